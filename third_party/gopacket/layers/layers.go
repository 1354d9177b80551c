// Package layers stands in for github.com/google/gopacket/layers: see the
// parent package.
package layers

import "github.com/google/gopacket"

// LayerTypeEthernet is the only layer type tug's importer names.
const LayerTypeEthernet gopacket.LayerType = 1
