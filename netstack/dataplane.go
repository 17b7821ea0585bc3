package netstack

import "github.com/bitw-dev/bitw/ipsec"

// DataPlane is what the frame path needs of the IPsec engine. Every method
// borrows b: it may rewrite the packet in place (encapsulate, decapsulate)
// but the stack keeps ownership and releases or transmits the buffer
// afterwards. The methods are called concurrently from both RX goroutines
// and from gVisor's goroutines, so an implementation must be safe for
// concurrent use.
type DataPlane interface {
	// Outbound handles an inner IP packet from the red port (IP header
	// first, no Ethernet header), whose TTL the stack has already
	// decremented. mtu is the black port's IP MTU.
	//   VerdictForward: b holds the outer packet for the black port,
	//     toward NextHop.
	//   VerdictBypass: b is unchanged and crosses in clear toward
	//     NextHop (the packet's own destination).
	//   VerdictDrop with DropTooBig: b is unchanged and MTU is the
	//     largest inner packet the SA carries (RFC 4301 §8.2), for an
	//     ICMP error or for pre-fragmentation (RFC 4459 §3.4).
	Outbound(b *ipsec.Buffer, mtu int) ipsec.OutResult

	// Inbound handles an outer IP packet addressed to the device that
	// carries ESP, AH or UDP to port 4500 (already reassembled).
	//   VerdictForward: b holds the decapsulated inner packet for red.
	//   VerdictLocal: b is unchanged (IKE behind the non-ESP marker,
	//     RFC 3948 §2.2) and goes to the local stack.
	Inbound(b *ipsec.Buffer) ipsec.InResult

	// InboundBypass decides on a cleartext packet from black in transit
	// to red: VerdictBypass (b unchanged) or VerdictDrop.
	InboundBypass(b *ipsec.Buffer) ipsec.InResult
}

// The IPsec engine is the data plane the appliance wires in.
var _ DataPlane = (*ipsec.Engine)(nil)
