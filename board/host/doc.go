//go:build linux

// Package host is the board for the Linux runtime: bitw as a process
// attached to two Linux interfaces. Each port is an AF_PACKET socket on a
// named interface (a TPACKET_V2 receive ring, batched sendmmsg, virtio-net
// headers so that partial checksums are completed and segmentation-offload
// frames split) or a TAP device ("tap:NAME"). Both implement
// netstack.NIC. AF_PACKET ports also implement netstack.SegmentOffload:
// a train of frames leaves as one virtio-net GSO frame (TCPv4, TCPv6,
// UDP_L4), which the kernel segments or, across veth, hands on whole.
//
// bitw owns its links: Open brings the link up, puts it in promiscuous
// mode, turns off receive coalescing (and segmentation offloads, when
// the port sends no trains), keeps the kernel's IPv6 and IPv4 forwarding
// off it, and reports any address the kernel still holds there so that
// the caller can warn (the kernel would answer ARP and send
// port-unreachable beside bitw's own stack).
package host
