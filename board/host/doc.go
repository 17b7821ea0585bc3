//go:build linux

// Package host is the board for the Linux runtime: bitw as a process
// attached to two Linux interfaces. Each port is an AF_PACKET socket on a
// named interface (a TPACKET_V2 receive ring, batched sendmmsg, virtio-net
// headers so that partial checksums are completed and segmentation-offload
// frames split) or a TAP device ("tap:NAME"). Both implement
// netstack.NIC.
//
// bitw owns its links: Open brings the link up, puts it in promiscuous
// mode, turns off receive and segmentation offloads, keeps the kernel's
// IPv6 and IPv4 forwarding off it, and reports any address the kernel
// still holds there so that the caller can warn (the kernel would answer
// ARP and send port-unreachable beside bitw's own stack).
package host
