package commands

import (
	"errors"

	"github.com/tugcli/tug/image"
)

// diskFull gives a command's error on a full disk what to do
// (image.DiskFull), naming the store the command used.
func (e *Env) diskFull(err error) error {
	var ee *ExitError
	if err == nil || (errors.As(err, &ee) && ee.Err == nil) {
		return err
	}
	root := ""
	if e.store != nil {
		root = e.store.GraphRoot()
	} else if e.Globals != nil {
		root = e.Globals.Root
	}
	return image.DiskFull(err, root)
}
