package pcap

import (
	"path/filepath"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
)

// The strongSwan capture holds IKE_SA_INIT on 500, IKE_AUTH on 4500 and six
// ESP-in-UDP pings (../shared/captures/README.md).
func TestReadStrongSwanCapture(t *testing.T) {
	dir := testvec.SharedDir(t, "captures")
	pkts, err := ReadFile(filepath.Join(dir, "strongswan-5.9.8-psk-x25519-aes128gcm16", "exchange.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var ike500, ike4500, esp int
	for _, p := range pkts {
		switch {
		case p.Proto == 17 && p.DstPort == 500:
			ike500++
		case p.Proto == 17 && p.DstPort == 4500 && len(p.UDPData) >= 4 && string(p.UDPData[:4]) == "\x00\x00\x00\x00":
			ike4500++
		case p.Proto == 17 && p.DstPort == 4500:
			esp++
		}
	}
	if ike500 != 2 || ike4500 != 2 || esp != 6 {
		t.Errorf("got %d IKE on 500, %d IKE on 4500, %d ESP-in-UDP", ike500, ike4500, esp)
	}
}
