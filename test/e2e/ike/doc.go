// Package ikee2e runs bitw's IKEv2 engine (package ike) against strongSwan
// 5.9 (charon with kernel-libipsec) in the network namespaces of
// test/e2e/harness. It tests the engine on its own, below the appliance:
// the appliance's end-to-end tests are in test/e2e.
//
// bitw's side runs inside the test process: its UDP sockets and a TUN
// device are created in gwA's namespace (setns on a locked thread), an
// ike.Manager negotiates over the sockets, and ipsec.Engine, behind a
// small ike.Installer adapter, carries the red traffic between the TUN
// device and ESP in UDP 4500. So the tests check what strongSwan
// negotiated, that both sides derived the same keys, and that pings cross
// the tunnel, also while SAs are rekeyed.
//
// Gated like the rest of test/e2e: BITW_E2E=1 and root.
package ikee2e
