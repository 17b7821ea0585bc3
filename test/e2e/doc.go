// Package e2e holds the network-namespace end-to-end tests: bitw and
// strongSwan gateways in design.md's test topology, built by the harness
// subpackage. They run only with BITW_E2E=1 as root (make e2e); otherwise
// they skip.
package e2e
