// Package netstack is the appliance's network layer: the per-port frame
// loops, the transit fast path between the red and black ports, neighbour
// resolution, the router duties of RFC 1812 (TTL, ICMP errors,
// fragmentation, MSS clamping), and a gVisor stack that terminates the
// device's own traffic (ARP, NDP, ICMP to the device, IKE, management).
//
// Transit traffic never enters gVisor. Each port has one RX goroutine that
// reads a batch of frames into buffers from a bounded ipsec.Pool, classifies
// them, runs transit packets through the DataPlane (ESP in place) and
// transmits the result synchronously on the other port. Only frames for the
// device itself are copied into gVisor, which also resolves neighbours: the
// fast path reads a lock-free mirror of gVisor's neighbour tables.
//
// The package depends on no operating system: boards provide ports through
// the NIC interface (AF_PACKET and TAP in board/host, the i.MX ENET and
// USB CDC-ECM ports on TamaGo boards), and the data plane arrives through
// the DataPlane interface.
package netstack
