package netstack

import (
	"sync/atomic"

	"github.com/bitw-dev/bitw/ipsec"
)

// DropReason says why the frame path dropped a frame or packet. Reasons
// the data plane gave are counted apart, under ipsec.DropReason.
type DropReason uint8

const (
	DropNone               DropReason = iota
	DropRunt                          // frame shorter than an Ethernet header
	DropNotForUs                      // unicast to another MAC (promiscuous port)
	DropEtherType                     // neither ARP, IPv4 nor IPv6 (VLAN tags included)
	DropMalformed                     // bad IP version, lengths or header checksum
	DropMartian                       // impossible source or destination (RFC 1812 §5.3.7), or a scope that must not be forwarded
	DropLinkBroadcast                 // unicast IP sent to a link-layer broadcast or multicast (RFC 1812 §5.3.4)
	DropMulticast                     // multicast or broadcast that would need forwarding
	DropOtherPortAddress              // addressed to the device's address on the other port
	DropTunnelToDevice                // decapsulated or bypassed packet addressed to the device
	DropTTLExceeded                   // TTL or hop limit expired in transit (ICMP time exceeded sent)
	DropTooBig                        // larger than the next link and not fragmentable (ICMP sent)
	DropNoRoute                       // next hop neither on-link nor via a gateway
	DropNeighbourQueueFull            // unresolved neighbour: queue or pending slots full
	DropNeighbourFailed               // neighbour resolution failed
	DropNoBuffer                      // buffer pool exhausted
	DropTxError                       // the NIC refused the frame
	DropReassemblyTimeout             // outer datagram incomplete at its deadline
	DropReassemblyOverlap             // overlapping or inconsistent fragments (RFC 5722 discipline)
	DropReassemblyTooBig              // reassembled datagram larger than allowed
	DropReassemblyEvicted             // reassembly slot reclaimed for a newer datagram
	DropUnexpectedVerdict             // a data-plane verdict that the direction does not allow
	DropDataPlane                     // the data plane dropped it (reason counted under DataPlaneDrops)
	DropLocalStack                    // the local stack could not take the packet
	DropSourceRoute                   // IPv4 loose or strict source route option (RFC 7126 §4.3, §4.4)
	numDropReasons
)

// NumDropReasons is the number of netstack drop reasons, for arrays.
const NumDropReasons = int(numDropReasons)

var dropReasonNames = [numDropReasons]string{
	DropNone:               "none",
	DropRunt:               "runt",
	DropNotForUs:           "not_for_us",
	DropEtherType:          "ethertype",
	DropMalformed:          "malformed",
	DropMartian:            "martian",
	DropLinkBroadcast:      "link_broadcast",
	DropMulticast:          "multicast",
	DropOtherPortAddress:   "other_port_address",
	DropTunnelToDevice:     "tunnel_to_device",
	DropTTLExceeded:        "ttl_exceeded",
	DropTooBig:             "too_big",
	DropNoRoute:            "no_route",
	DropNeighbourQueueFull: "neighbour_queue_full",
	DropNeighbourFailed:    "neighbour_failed",
	DropNoBuffer:           "no_buffer",
	DropTxError:            "tx_error",
	DropReassemblyTimeout:  "reassembly_timeout",
	DropReassemblyOverlap:  "reassembly_overlap",
	DropReassemblyTooBig:   "reassembly_too_big",
	DropReassemblyEvicted:  "reassembly_evicted",
	DropUnexpectedVerdict:  "unexpected_verdict",
	DropDataPlane:          "data_plane",
	DropLocalStack:         "local_stack",
	DropSourceRoute:        "source_route",
}

// String is the reason's metric label.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// PortCounters are one port's traffic counters.
type PortCounters struct {
	RxPackets, RxBytes uint64 // frames read from the NIC
	TxPackets, TxBytes uint64 // frames the NIC accepted
	RxErrors, TxErrors uint64 // NIC read errors, frames the NIC refused
	// TxTrains counts segmentation-offload frames the NIC took, and
	// TxTrainFrames the frames they carried (also in TxPackets).
	TxTrains, TxTrainFrames uint64
}

// Counters is a snapshot of the frame path's counters, for status and
// metrics. Drops[DropDataPlane] is the sum of DataPlaneDrops.
type Counters struct {
	Red, Black     PortCounters
	Drops          [NumDropReasons]uint64
	DataPlaneDrops [ipsec.NumDropReasons]uint64

	Encapsulated uint64 // red packets that left black inside an SA
	Decapsulated uint64 // black packets that left red after decapsulation
	BypassOut    uint64 // red packets that crossed to black in clear by policy
	BypassIn     uint64 // black packets that crossed to red in clear by policy
	ToLocal      uint64 // packets handed to the local (gVisor) stack
	FromLocal    uint64 // frames the local stack transmitted

	ICMPSent        uint64 // ICMP errors the device originated
	ICMPRateLimited uint64 // ICMP errors suppressed by the rate limit
	MSSClamped      uint64 // SYNs whose MSS option was lowered
	Fragmented      uint64 // packets split into fragments (pre-fragmentation included)
	FragmentsIn     uint64 // outer fragments taken in for reassembly
	Reassembled     uint64 // outer datagrams reassembled
	NeighbourHeld   uint64 // packets held while a neighbour was resolved
	PoolAvailable   int    // free buffers at the time of the snapshot
}

type portCounters struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	rxErrors, txErrors atomic.Uint64
	txTrains           atomic.Uint64
	txTrainFrames      atomic.Uint64
}

func (c *portCounters) snapshot() PortCounters {
	return PortCounters{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		RxErrors: c.rxErrors.Load(), TxErrors: c.txErrors.Load(),
		TxTrains: c.txTrains.Load(), TxTrainFrames: c.txTrainFrames.Load(),
	}
}

type counters struct {
	ports     [numPorts]portCounters
	drops     [numDropReasons]atomic.Uint64
	dataPlane [ipsec.NumDropReasons]atomic.Uint64

	encapsulated, decapsulated atomic.Uint64
	bypassOut, bypassIn        atomic.Uint64
	toLocal, fromLocal         atomic.Uint64
	icmpSent, icmpRateLimited  atomic.Uint64
	mssClamped, fragmented     atomic.Uint64
	reassembled, neighbourHeld atomic.Uint64
	fragmentsIn                atomic.Uint64
}

func (c *counters) drop(r DropReason) { c.drops[r].Add(1) }

func (c *counters) dropDataPlane(r ipsec.DropReason) {
	c.drops[DropDataPlane].Add(1)
	if int(r) < ipsec.NumDropReasons {
		c.dataPlane[r].Add(1)
	}
}

func (c *counters) snapshot() Counters {
	var s Counters
	s.Red = c.ports[Red].snapshot()
	s.Black = c.ports[Black].snapshot()
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	for i := range c.dataPlane {
		s.DataPlaneDrops[i] = c.dataPlane[i].Load()
	}
	s.Encapsulated = c.encapsulated.Load()
	s.Decapsulated = c.decapsulated.Load()
	s.BypassOut = c.bypassOut.Load()
	s.BypassIn = c.bypassIn.Load()
	s.ToLocal = c.toLocal.Load()
	s.FromLocal = c.fromLocal.Load()
	s.ICMPSent = c.icmpSent.Load()
	s.ICMPRateLimited = c.icmpRateLimited.Load()
	s.MSSClamped = c.mssClamped.Load()
	s.Fragmented = c.fragmented.Load()
	s.FragmentsIn = c.fragmentsIn.Load()
	s.Reassembled = c.reassembled.Load()
	s.NeighbourHeld = c.neighbourHeld.Load()
	return s
}
