// Package harness builds the end-to-end test topology of design.md in
// Linux network namespaces and drives the programs that run in it:
// strongSwan peers (one charon per namespace), bitw, ping, iperf3,
// tcpdump and tshark.
//
//	hostA 192.168.1.10 -- red0 [gwA] black0 203.0.113.1 -- wire -- 203.0.113.2 black0 [gwB] red0 -- hostB 192.168.2.10
//
// The wire namespace in the middle is a bridge, or with Options.NAT a
// masquerading router that puts gwB behind NAT. It is also the neutral
// place to capture what the gateways put on the black link.
//
// Everything a helper creates (namespaces, processes, nftables tables,
// files) is removed by cleanups registered on the T it was given, which run
// even when the test fails. Namespace names carry a per-process,
// per-topology prefix (bte-PID-SEQ-), and the first topology of a process
// sweeps the namespaces of earlier runs whose process no longer exists.
// Processes also get SIGKILL if the test binary dies. Every command runs
// under a deadline and every wait is bounded.
//
// A bitw-against-strongSwan test reads:
//
//	harness.RequireE2E(t, "charon-systemd", "swanctl", "tcpdump", "tshark")
//	bin := harness.BitwBinary(t) // $BITW_BIN, set by make e2e
//	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.StrongSwanGateway})
//	sw := harness.StartStrongSwan(t, topo.GwB.NS, topo.GwB.SwanctlConfig(harness.SiteToSite{
//		Proposals: []string{"aes128gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes128gcm16"}, PSK: psk}), nil)
//	bw := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, harness.BitwSite{
//		Proposals: []string{"aes128gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes128gcm16"}, PSK: psk,
//		StartAction: "start", SaveKeys: true}))
//	capture := topo.Wire.StartCapture(t, topo.WireA, 0)
//	_, _, err := bw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 10*time.Second)
//	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 5)
//	capture.Stop()
//	keys, _ := sw.Keys()                       // from charon's level-4 log
//	decoded, _ := harness.Decode(capture.Path, keys.UAT(), "")
//	own, _ := harness.ReadUATDir(bw.Files.KeysDir) // what bitw's save_keys wrote
//
// The helpers take a T, the part of testing.TB they need, so that the
// benchmark program can drive the same topology outside "go test".
package harness
