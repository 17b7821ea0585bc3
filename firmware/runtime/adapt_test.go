package runtime

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/firmware/mgmt"
	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

func TestSelectorsConversion(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")
	got := selectors([]ike.TS{
		{From: a, To: b, ToPort: 65535},
		{Proto: 6, From: a, To: a, FromPort: 80, ToPort: 80},
		{Proto: 17, From: a, To: a, FromPort: 65535, ToPort: 0}, // OPAQUE
	})
	want := []ipsec.TS{
		{From: a, To: b, ToPort: 65535},
		{Proto: 6, From: a, To: a, FromPort: 80, ToPort: 80},
		{Proto: 17, From: a, To: a, FromPort: 0, ToPort: 65535},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i].String() || got[i].FromPort != want[i].FromPort || got[i].ToPort != want[i].ToPort {
			t.Errorf("%d: got %v %d-%d, want %v %d-%d", i, got[i], got[i].FromPort, got[i].ToPort, want[i], want[i].FromPort, want[i].ToPort)
		}
	}
}

func TestOuterHeader(t *testing.T) {
	for _, c := range []struct {
		p    ike.SAParams
		want ipsec.OuterHeader
	}{
		{ike.SAParams{CopyDF: true, CopyECN: true}, ipsec.OuterHeader{DF: ipsec.DFCopy, ECN: ipsec.ECNNormal}},
		{ike.SAParams{}, ipsec.OuterHeader{DF: ipsec.DFClear, ECN: ipsec.ECNCompat}},
		{ike.SAParams{CopyDF: true, CopyECN: true, CopyDSCP: ike.CopyDSCPNo}, ipsec.OuterHeader{DF: ipsec.DFCopy, ECN: ipsec.ECNNormal, SetDSCP: true}},
	} {
		if got, err := outerHeader(c.p); err != nil || got != c.want {
			t.Errorf("%+v: got %+v, %v, want %+v", c.p, got, err, c.want)
		}
	}
	// The engine cannot copy DSCP inward: refused, not dropped.
	for _, d := range []ike.CopyDSCP{ike.CopyDSCPIn, ike.CopyDSCPYes} {
		if _, err := outerHeader(ike.SAParams{CopyDSCP: d}); err == nil {
			t.Errorf("copy_dscp %d accepted", d)
		}
	}
}

// TestSAConfigTFC: TFC padding to the MTU reaches the engine; what it
// cannot do is refused.
func TestSAConfigTFC(t *testing.T) {
	esp := proposal.Suite{Protocol: proposal.ProtoESP}
	for _, c := range []struct {
		p       ike.SAParams
		tfc, ok bool
	}{
		{ike.SAParams{Mode: ike.ModeTunnel, Suite: esp}, false, true},
		{ike.SAParams{Mode: ike.ModeTunnel, Suite: esp, TFCPadding: -1}, true, true},
		{ike.SAParams{Mode: ike.ModeTunnel, Suite: esp, TFCPadding: 1000}, false, false},
		{ike.SAParams{Mode: ike.ModeTransport, Suite: esp, TFCPadding: -1}, false, false},
		{ike.SAParams{Mode: ike.ModeTunnel, Suite: proposal.Suite{Protocol: proposal.ProtoAH}, TFCPadding: -1}, false, false},
	} {
		cfg, err := saConfig(c.p)
		if (err == nil) != c.ok || err == nil && cfg.TFC != c.tfc {
			t.Errorf("TFC %d, mode %v, %v: TFC %v, %v", c.p.TFCPadding, c.p.Mode, c.p.Suite.Protocol, cfg.TFC, err)
		}
	}
}

func TestSAKeysRoundTrip(t *testing.T) {
	k := ike.SAKey{Dir: ike.DirOut, Proto: proposal.ProtoESP, SPI: 0xc1a2b3c4, Dst: netip.MustParseAddr("203.0.113.2")}
	if got := ikeKey(saKey(k)); got != k {
		t.Errorf("%v -> %v", k, got)
	}
	if saKey(k).Dir != ipsec.DirOut || saKey(ike.SAKey{Dir: ike.DirIn}).Dir != ipsec.DirIn {
		t.Error("directions")
	}
}

func TestDataPlaneEvent(t *testing.T) {
	k := ipsec.SAKey{Dir: ipsec.DirIn, Proto: proposal.ProtoESP, SPI: 7, Dst: netip.MustParseAddr("203.0.113.1")}
	for kind, want := range map[ipsec.EventKind]ike.EventKind{
		ipsec.EventSoftExpire: ike.EventSoftExpire, ipsec.EventHardExpire: ike.EventHardExpire,
		ipsec.EventSeqExhausted: ike.EventSeqExhausted, ipsec.EventAcquire: ike.EventAcquire,
	} {
		ev := ipsec.Event{Kind: kind, ReqID: 3, SA: k, Packet: ipsec.PacketSelector{Src: netip.MustParseAddr("192.168.1.10"),
			Dst: netip.MustParseAddr("192.168.2.10"), Proto: 6, SrcPort: 40000, DstPort: 22}}
		got := dataPlaneEvent(ev)
		if got.Kind != want || got.ReqID != 3 || got.SA != ikeKey(k) {
			t.Errorf("%v: %+v", kind, got)
		}
		if kind == ipsec.EventAcquire && (got.Src != ev.Packet.Src || got.Dst != ev.Packet.Dst || got.Proto != 6 || got.SrcPort != 40000 || got.DstPort != 22) {
			t.Errorf("acquire lost the packet's selector: %+v", got)
		}
	}
}

func TestIKEDropLabels(t *testing.T) {
	var s ike.Stats
	s.Drops[ike.DropUnknownSPI] = 2
	s.Drops[ike.DropWrongMessageID] = 3
	s.Malformed[message.ReasonIntegrity] = 4
	s.Malformed[0] = 1
	got := ikeDrops(&s)
	want := map[string]uint64{"unknown_spi": 2, "wrong_message_id": 3, "malformed_integrity_check_failed": 4, "malformed": 1}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// TestIKEMetrics: the IKE counters reach the metrics, and IKE's drops
// appear under source ike with the status's labels, every reason from
// the start.
func TestIKEMetrics(t *testing.T) {
	var s ike.Stats
	s.Drops[ike.DropHalfOpenPerSource] = 41
	s.Malformed[message.ReasonIntegrity] = 4
	s.CookiesSent, s.CookiesVerified = 120, 7
	s.InvalidIKESPISent, s.InvalidMajorVersionSent, s.UnprotectedRepliesLimited = 6, 1, 9
	s.ChildrenIdle, s.Retransmits, s.AuthFailures = 2, 3, 5
	s.Out[0][0] = 8
	c := ikeCounters(&s)
	if c.CookiesSent != 120 || c.CookiesVerified != 7 || c.UnprotectedRepliesLimited != 9 || c.IdleChildSAsClosed != 2 ||
		c.Retransmits != 3 || c.AuthFailures != 5 {
		t.Errorf("counters: %+v", c)
	}
	want := map[string]uint64{"INVALID_IKE_SPI": 6, "INVALID_MAJOR_VERSION": 1}
	if len(c.UnprotectedReplies) != len(want) {
		t.Errorf("unprotected replies: %+v", c.UnprotectedReplies)
	}
	for _, n := range c.UnprotectedReplies {
		if want[n.Notify] != n.Count {
			t.Errorf("%s: %d, want %d", n.Notify, n.Count, want[n.Notify])
		}
	}
	if len(c.Exchanges) != 2*ike.NumExchangeSlots || c.Exchanges[0] != (mgmt.Exchange{Type: "IKE_SA_INIT", Direction: "out", Count: 8}) {
		t.Errorf("exchanges: %+v", c.Exchanges)
	}

	drops := map[string]uint64{}
	for _, d := range ikeDropList(&s) {
		if d.Source != SourceIKE {
			t.Errorf("source %q", d.Source)
		}
		if _, dup := drops[d.Reason]; dup {
			t.Errorf("reason %q twice", d.Reason)
		}
		drops[d.Reason] = d.Count
	}
	if len(drops) != ike.NumDropReasons-1+message.NumReasons {
		t.Errorf("%d IKE drop series, want every reason: %v", len(drops), drops)
	}
	for reason, n := range ikeDrops(&s) {
		if drops[reason] != n {
			t.Errorf("%s: metrics %d, status %d", reason, drops[reason], n)
		}
	}
	if drops["half_open_per_source"] != 41 || drops["malformed_integrity_check_failed"] != 4 || drops["unknown_spi"] != 0 {
		t.Errorf("drops: %v", drops)
	}
}

// TestStatusTimes: IKE's rekey and expiry times become rekey_secs and
// expire_secs, whole seconds from now rounded up (a timer due in 0.2 s is
// still shown), never negative (a timer IKE has not run yet), and absent
// when nothing is scheduled.
func TestStatusTimes(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		at   time.Time
		want int64
	}{
		{time.Time{}, 0},
		{now.Add(-time.Second), 0},
		{now, 0},
		{now.Add(200 * time.Millisecond), 1},
		{now.Add(time.Second), 1},
		{now.Add(90*time.Minute + 500*time.Millisecond), 5401},
	} {
		if got := secsUntil(c.at, now); got != c.want {
			t.Errorf("secsUntil(now%+v) = %d, want %d", c.at.Sub(now), got, c.want)
		}
	}
	var r Runtime
	sa := r.ikeSA(ike.IKESAStatus{Conn: "peer", State: ike.IKEEstablished, Established: now.Add(-time.Minute),
		RekeyAt: now.Add(4 * time.Hour), ExpireAt: now.Add(4*time.Hour + 24*time.Minute),
		Children: []ike.ChildSAStatus{
			{Name: "lan", State: ike.ChildInstalled, Installed: now, RekeyAt: now.Add(50 * time.Minute), ExpireAt: now.Add(time.Hour)},
			{Name: "lan", State: ike.ChildRekeying, Installed: now.Add(-time.Hour), ExpireAt: now.Add(-time.Millisecond)},
		}}, now)
	if sa.RekeySecs != 4*3600 || sa.ExpireSecs != 4*3600+24*60 || sa.EstablishedSecs != 60 {
		t.Errorf("IKE SA: rekey %d, expire %d, established %d", sa.RekeySecs, sa.ExpireSecs, sa.EstablishedSecs)
	}
	if c := sa.ChildSAs[0]; c.RekeySecs != 3000 || c.ExpireSecs != 3600 {
		t.Errorf("Child SA: rekey %d, expire %d", c.RekeySecs, c.ExpireSecs)
	}
	if c := sa.ChildSAs[1]; c.RekeySecs != 0 || c.ExpireSecs != 0 {
		t.Errorf("rekeying Child SA past its expiry: rekey %d, expire %d", c.RekeySecs, c.ExpireSecs)
	}
}

// TestEventOverflowMetrics: an event the engine cannot queue (here a soft
// expiry, with nobody reading the channel) is counted in the metrics'
// ipsec counters, and so is one IKE's queue refuses.
func TestEventOverflowMetrics(t *testing.T) {
	var now int64
	e := ipsec.New(ipsec.Config{Events: make(chan ipsec.Event), Now: func() int64 { return now }})
	p := ike.SAParams{Dir: ike.DirOut, SPI: 0x1000, Mode: ike.ModeTunnel,
		Src: netip.MustParseAddr("203.0.113.1"), Dst: netip.MustParseAddr("203.0.113.2"),
		Suite:  proposal.Suite{Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}},
		EncKey: make([]byte, 20), ReqID: 1, Lifetime: ike.Lifetime{Soft: ike.Limits{Time: time.Minute}},
		Local:  []ike.TS{{From: netip.MustParseAddr("192.168.1.0"), To: netip.MustParseAddr("192.168.1.255"), ToPort: 65535}},
		Remote: []ike.TS{{From: netip.MustParseAddr("192.168.2.0"), To: netip.MustParseAddr("192.168.2.255"), ToPort: 65535}}}
	cfg, err := saConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.AddSA(cfg); err != nil {
		t.Fatal(err)
	}
	if c := ipsecCounters(e); c.EventOverflows != 0 {
		t.Fatalf("overflows before any event: %+v", c)
	}
	now += int64(2 * time.Minute)
	e.Tick(now)
	if c := ipsecCounters(e); c.EventOverflows != 1 {
		t.Errorf("a soft expiry nobody could queue: %+v, want 1 overflow", c)
	}
	var s ike.Stats
	s.EventsDropped = 3
	if c := ikeCounters(&s); c.EventsDropped != 3 {
		t.Errorf("IKE's dropped events: %+v", c)
	}
}

// TestIKEConfigTranslation loads a configuration with most settings and
// checks what the IKE manager is given.
func TestIKEConfigTranslation(t *testing.T) {
	cfg := siteConfig(t, "gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "trap",
		`allow_legacy = true`,
		`dpd_action = "restart"
rekey_time = "20m"
life_time = "30m"
rekey_bytes = 1000000
copy_dscp = "no"
inactivity = "5m"`)
	ic, creds, err := ikeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !ic.Policy.AllowLegacy || len(ic.Connections) != 1 {
		t.Fatalf("config: %+v", ic)
	}
	c := ic.Connections[0]
	if c.Name != "peer" || !slices.Equal(c.LocalAddrs, []netip.Addr{netip.MustParseAddr("203.0.113.1")}) ||
		len(c.RemoteAddrs) != 1 || c.RemoteAddrs[0].From != netip.MustParseAddr("203.0.113.2") {
		t.Errorf("connection: %+v", c)
	}
	if c.Local.Method != ike.AuthPSK || c.Local.ID.Type != message.IDFQDN || string(c.Local.ID.Data) != "gw-a.example" || !c.Local.AllowSHA1 {
		t.Errorf("local auth: %+v", c.Local)
	}
	ch := c.Children[0]
	if ch.StartAction != ike.ActionTrap || ch.DPDAction != ike.ActionStart || ch.Mode != ike.ModeTunnel ||
		ch.RekeyTime != 20*time.Minute || ch.LifeTime != 30*time.Minute || ch.RekeyBytes != 1000000 || ch.CopyDSCP != ike.CopyDSCPNo ||
		ch.Inactivity != 5*time.Minute {
		t.Errorf("child: %+v", ch)
	}
	if len(ch.LocalTS) != 1 || ch.LocalTS[0].Dynamic || ch.LocalTS[0].From != netip.MustParseAddr("192.168.1.0") || ch.LocalTS[0].To != netip.MustParseAddr("192.168.1.255") {
		t.Errorf("local_ts: %+v", ch.LocalTS)
	}
	if k, ok := creds.SharedKey(c.Local.ID, c.Remote.ID); !ok || string(k) != labPSK {
		t.Errorf("pre-shared key: %q, %v", k, ok)
	}
}

// TestPSKAsChecked: IKE uses the pre-shared key that firmware/config
// chose and `bitw check` validated. Two secrets, one naming each side,
// rank differently there (the peer's identity wins) than in file order.
func TestPSKAsChecked(t *testing.T) {
	cfg := siteConfig(t, "gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "start", "", `
[secrets.ike-ours]
id = "gw-a.example"
secret = "the key that names only our identity"
[secrets.ike-theirs]
id = "gw-b.example"
secret = "the key that names the peer's identity"`)
	const want = "the key that names the peer's identity"
	if got := string(cfg.Connections[0].PSK); got != want {
		t.Fatalf("firmware/config chose %q", got)
	}
	ic, creds, err := ikeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := ic.Connections[0]
	if k, ok := creds.SharedKey(c.Local.ID, c.Remote.ID); !ok || string(k) != want {
		t.Errorf("IKE gets %q, %v; want %q", k, ok, want)
	}
	if k, ok := creds.SharedKey(c.Local.ID, ike.FQDNIdentity("gw-x.example")); ok {
		t.Errorf("a key %q for a peer no connection names", k)
	}
}

// TestEd25519Key: an Ed25519 private key, which firmware/config admits,
// reaches IKE's credentials (ed25519.PrivateKey is a slice and cannot be
// a map key; the translation once panicked on it).
func TestEd25519Key(t *testing.T) {
	key, err := filepath.Abs("../../ike/auth/testdata/keys/ed25519.pem")
	if err != nil {
		t.Fatal(err)
	}
	cfg := siteConfig(t, "gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "start", "",
		fmt.Sprintf("\n[secrets.private-ed]\nfile = %q", key))
	_, creds, err := ikeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pub := cfg.Secrets.Private[0].Key.Public()
	if _, ok := creds.Signer(pub); !ok || len(creds.keys.Keys) != 1 {
		t.Errorf("keys %v", creds.keys.Keys)
	}
}
