package image

import (
	"os"

	"go.podman.io/storage/types"
)

// Exists reports whether the store that o names is there, without
// creating or opening it: shell completion lists no names, and prints
// nothing, for a store that has never been used.
func Exists(o Options) bool {
	root := o.GraphRoot
	if root == "" {
		def, err := types.DefaultStoreOptions()
		if err != nil {
			return false
		}
		root = def.GraphRoot
	}
	fi, err := os.Stat(root)
	return err == nil && fi.IsDir()
}
