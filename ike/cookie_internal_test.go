package ike

import (
	"net/netip"
	"testing"
	"time"
)

// TestCookieRotation: a cookie stays valid across one secret rotation
// and not two; it is bound to the nonce, address and SPI.
func TestCookieRotation(t *testing.T) {
	m, err := New(Config{}, Deps{Sender: nopSender{}, Installer: nopInstaller{}})
	if err != nil {
		t.Fatal(err)
	}
	ni := make([]byte, 32)
	ip := netip.MustParseAddr("198.51.100.7")
	c := m.cookies.make(ni, ip, 42)
	if !m.cookies.verify(c, ni, ip, 42) {
		t.Fatal("fresh cookie refused")
	}
	for _, bad := range []struct {
		ni  []byte
		ip  netip.Addr
		spi uint64
	}{{append([]byte{1}, ni[1:]...), ip, 42}, {ni, netip.MustParseAddr("198.51.100.8"), 42}, {ni, ip, 43}} {
		if m.cookies.verify(c, bad.ni, bad.ip, bad.spi) {
			t.Errorf("cookie accepted for %v", bad)
		}
	}
	m.cookies.rotate(m)
	if !m.cookies.verify(c, ni, ip, 42) {
		t.Error("cookie refused after one rotation")
	}
	m.cookies.rotate(m)
	if m.cookies.verify(c, ni, ip, 42) {
		t.Error("cookie accepted after two rotations")
	}
	if len(c) < 1 || len(c) > 64 {
		t.Errorf("cookie of %d octets", len(c))
	}
	// The rotation timer is armed.
	if d, ok := m.NextDeadline(); !ok || d.Sub(m.now) > DefaultCookieSecretLifetime+time.Second {
		t.Errorf("next deadline %v", d)
	}
}
