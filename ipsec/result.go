package ipsec

import "net/netip"

// Verdict is what the data plane decided for one packet.
type Verdict uint8

const (
	// VerdictDrop: the caller releases the buffer; Reason says why and has
	// already been counted.
	VerdictDrop Verdict = iota
	// VerdictForward: Outbound left the encapsulated packet (outer IP
	// header first) in the buffer for the black port, toward NextHop;
	// Inbound left the decapsulated inner packet for the red port.
	VerdictForward
	// VerdictBypass: a BYPASS policy lets the packet cross in clear,
	// unchanged.
	VerdictBypass
	// VerdictLocal: the packet is not for the data plane (IKE on UDP 4500
	// with the non-ESP marker); the caller hands it to the local stack.
	VerdictLocal
)

func (v Verdict) String() string {
	switch v {
	case VerdictDrop:
		return "drop"
	case VerdictForward:
		return "forward"
	case VerdictBypass:
		return "bypass"
	case VerdictLocal:
		return "local"
	}
	return "verdict?"
}

// OutResult is the outcome of Engine.Outbound.
type OutResult struct {
	Verdict Verdict
	Reason  DropReason
	// NextHop is the outer destination address for VerdictForward, and
	// the packet's own destination for VerdictBypass.
	NextHop netip.Addr
	// MTU is set with DropTooBig: the largest inner packet that fits the
	// black MTU through this SA, for an ICMP fragmentation-needed or
	// packet-too-big message.
	MTU int
}

// InResult is the outcome of Engine.Inbound.
type InResult struct {
	Verdict Verdict
	Reason  DropReason
	SPI     uint32
}
