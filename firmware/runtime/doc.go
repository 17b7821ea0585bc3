// Package runtime is bitw's composition root: it builds the appliance
// from a loaded configuration (config → board ports → ipsec.Engine →
// netstack.Stack → ike.Manager) and runs it, with the control socket,
// the management server, the key log and the log level behind it
// (docs/architecture.md describes the goroutines, the data flow,
// start-up and shutdown).
//
// The package adapts the parts to each other and owns no protocol logic:
// ike.Installer onto the engine, the engine's events onto
// ike.DataPlaneEvent, the IKE sockets on the gVisor stack onto
// ike.Sender and Manager.Deliver, IKE's status and the data plane's
// counters onto firmware/status and firmware/mgmt, and IKE's key hook
// onto firmware/keylog, and the engine's per-SA counters onto IKE's
// inactivity checks (ike.SAUsage). Every setting firmware/config admits
// is honoured; nothing is dropped with a warning. Ports come from a
// PortOpener, so the same
// composition runs on AF_PACKET and TAP links (HostPort, Linux) and on
// in-memory links in tests.
package runtime
