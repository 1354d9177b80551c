// Package gopacket stands in for github.com/google/gopacket in tug's build.
//
// tug's only importer of gopacket is gvisor-tap-vsock's pkg/tap, which
// decodes frames with it solely to log them when its Debug option is on;
// tug never turns that on. The real module's layers package builds large
// decoder tables at init, which cost every tug process (and tug re-executes
// itself up to four times per container) about 4 ms before main runs. This
// stand-in keeps the API tap calls and prints a hex dump instead.
package gopacket

import "encoding/hex"

// LayerType names the first layer to decode; the stand-in ignores it.
type LayerType int64

// Decoder is what NewPacket starts decoding with.
type Decoder interface{}

// DecodeOptions are ignored.
type DecodeOptions struct{}

// Default is the default DecodeOptions.
var Default DecodeOptions

// Packet is a frame to print.
type Packet interface{ String() string }

type packet []byte

func (p packet) String() string { return "frame of " + itoa(len(p)) + " bytes:\n" + hex.Dump(p) }

// NewPacket wraps data for printing.
func NewPacket(data []byte, _ Decoder, _ DecodeOptions) Packet { return packet(data) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
