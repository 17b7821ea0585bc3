package runtime

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
)

// configSections are firmware/config's section types: their fields are
// either settings or more sections.
var configSections = []reflect.Type{
	reflect.TypeFor[config.Config](), reflect.TypeFor[config.Device](), reflect.TypeFor[config.Policy](),
	reflect.TypeFor[config.BypassRule](), reflect.TypeFor[config.Interface](), reflect.TypeFor[config.Management](),
	reflect.TypeFor[config.Connection](), reflect.TypeFor[config.Auth](), reflect.TypeFor[config.Child](),
	reflect.TypeFor[config.Pool](), reflect.TypeFor[config.Secrets](), reflect.TypeFor[config.SharedKey](),
	reflect.TypeFor[config.PrivateKey](),
}

// configReferences are settings that name sections kept elsewhere.
var configReferences = []string{"Connection.Pools"}

// configSettings lists every setting of a loaded configuration as
// "Type.Field": the exported fields of the section types that are not
// sections themselves, and the references.
func configSettings() []string {
	var out []string
	for _, typ := range configSections {
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			elem := f.Type
			for elem.Kind() == reflect.Pointer || elem.Kind() == reflect.Slice {
				elem = elem.Elem()
			}
			name := typ.Name() + "." + f.Name
			if !slices.Contains(configSections, elem) || slices.Contains(configReferences, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// runtimeView is what the runtime makes of a configuration, short of
// opening links: IKE's configuration and credentials, the network stack's
// configuration and the device's SPD entries.
type runtimeView struct {
	IKE      ike.Config
	Creds    credentials
	Stack    netstack.Config
	Policies []ipsec.PolicyInfo
}

func viewOf(t *testing.T, cfg *config.Config) runtimeView {
	t.Helper()
	var v runtimeView
	var err error
	if v.IKE, v.Creds, err = ikeConfig(cfg); err != nil {
		t.Fatal(err)
	}
	red, black := nictest.Pair(9000, netstack.MAC{2, 0, 0, 0, 0, 1}, netstack.MAC{2, 0, 0, 0, 0, 2})
	r := &Runtime{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ports: [2]Port{{NIC: red}, {NIC: black}}, engine: ipsec.New(ipsec.Config{})}
	v.Stack = r.stackConfig()
	v.Stack.Logger = nil
	if err := r.installDevicePolicy(); err != nil {
		t.Fatal(err)
	}
	v.Policies = r.engine.Policies()
	return v
}

// TestEveryConfigFieldReachesTheRuntime keeps `bitw run` from ignoring a
// setting that `bitw check` accepts. Every setting of firmware/config is
// listed here, either with a change that must change what the runtime
// makes of the configuration (runtimeView), or with the place that reads
// it directly. A setting added to firmware/config fails this test until
// the runtime honours it and it is listed; a listed change that makes no
// difference means the runtime dropped it.
func TestEveryConfigFieldReachesTheRuntime(t *testing.T) {
	base := func() *config.Config {
		return siteConfig(t, "gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "start", "", "")
	}
	conn := func(c *config.Config) *config.Connection { return c.Connections[0] }
	child := func(c *config.Config) *config.Child { return c.Connections[0].Children[0] }
	second := time.Second
	ts := config.TrafficSelector{Addrs: config.AddressRange{From: netip.MustParseAddr("10.0.0.1"), To: netip.MustParseAddr("10.0.0.1")}, ToPort: 0xffff}
	cert := &x509.Certificate{Raw: []byte{1}}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(c *config.Config){
		"Device.AllowLegacy":        func(c *config.Config) { c.Device.AllowLegacy = !c.Device.AllowLegacy },
		"Device.AllowIntegrityOnly": func(c *config.Config) { c.Device.AllowIntegrityOnly = !c.Device.AllowIntegrityOnly },
		"Device.MSSClamp":           func(c *config.Config) { c.Device.MSSClamp = !c.Device.MSSClamp },
		"Device.MSS":                func(c *config.Config) { c.Device.MSS = 1300 },
		"Policy.Default":            func(c *config.Config) { c.Policy.Default = config.Bypass },
		"BypassRule.Local": func(c *config.Config) {
			c.Policy.Bypass = []config.BypassRule{{Local: ts, Remote: ts}}
			c.Policy.Bypass[0].Local.Proto = 6
		},
		"BypassRule.Remote": func(c *config.Config) {
			c.Policy.Bypass = []config.BypassRule{{Local: ts, Remote: ts}}
			c.Policy.Bypass[0].Remote.Proto = 6
		},
		"Interface.Link":      func(c *config.Config) { c.Black.Link.Name = "other0" },
		"Interface.Addresses": func(c *config.Config) { c.Red.Addresses = append(c.Red.Addresses, netip.MustParsePrefix("fd00::1/64")) },
		"Interface.Gateways": func(c *config.Config) {
			c.Black.Gateways = append(c.Black.Gateways, netip.MustParseAddr("203.0.113.254"))
		},
		"Interface.MTU": func(c *config.Config) { c.Black.MTU = 1400 },

		"Connection.Name": func(c *config.Config) { conn(c).Name += "x" },
		"Connection.LocalAddrs": func(c *config.Config) {
			conn(c).LocalAddrs = append(conn(c).LocalAddrs, netip.MustParseAddr("2001:db8::1"))
		},
		"Connection.RemoteAddrs": func(c *config.Config) { conn(c).RemoteAddrs = append(conn(c).RemoteAddrs, config.AddressRange{}) },
		"Connection.LocalPort":   func(c *config.Config) { conn(c).LocalPort++ },
		"Connection.RemotePort":  func(c *config.Config) { conn(c).RemotePort++ },
		"Connection.Proposals":   func(c *config.Config) { conn(c).Proposals = append(conn(c).Proposals, conn(c).Proposals[0]) },
		"Connection.VIPs":        func(c *config.Config) { conn(c).VIPs = append(conn(c).VIPs, netip.IPv4Unspecified()) },
		"Connection.Encap":       func(c *config.Config) { conn(c).Encap = !conn(c).Encap },
		"Connection.DPDDelay":    func(c *config.Config) { conn(c).DPDDelay += second },
		"Connection.DPDTimeout":  func(c *config.Config) { conn(c).DPDTimeout += second },
		"Connection.Fragmentation": func(c *config.Config) {
			conn(c).Fragmentation = config.FragmentNo
		},
		"Connection.Childless":   func(c *config.Config) { conn(c).Childless = config.ChildlessNever },
		"Connection.SendCertReq": func(c *config.Config) { conn(c).SendCertReq = !conn(c).SendCertReq },
		"Connection.SendCert":    func(c *config.Config) { conn(c).SendCert = config.SendCertNever },
		"Connection.KeyingTries": func(c *config.Config) { conn(c).KeyingTries++ },
		"Connection.Unique":      func(c *config.Config) { conn(c).Unique = config.UniqueKeep },
		"Connection.RekeyTime":   func(c *config.Config) { conn(c).RekeyTime += second },
		"Connection.OverTime":    func(c *config.Config) { conn(c).OverTime += second },
		"Connection.RandTime":    func(c *config.Config) { conn(c).RandTime += second },
		"Connection.PSK":         func(c *config.Config) { conn(c).PSK = []byte("another pre-shared key, also long") },
		"Connection.Pools":       func(c *config.Config) { conn(c).Pools = append(conn(c).Pools, &config.Pool{Name: "p"}) },

		"Auth.Method":  func(c *config.Config) { conn(c).Local.Method = config.AuthNull },
		"Auth.ID":      func(c *config.Config) { conn(c).Remote.ID = config.Identity{} },
		"Auth.Certs":   func(c *config.Config) { conn(c).Local.Certs = append(conn(c).Local.Certs, cert) },
		"Auth.CACerts": func(c *config.Config) { conn(c).Remote.CACerts = append(conn(c).Remote.CACerts, cert) },
		"Auth.Key":     func(c *config.Config) { conn(c).Local.Key = key },

		"Child.Name":         func(c *config.Config) { child(c).Name += "x" },
		"Child.LocalTS":      func(c *config.Config) { child(c).LocalTS = append(child(c).LocalTS, ts) },
		"Child.RemoteTS":     func(c *config.Config) { child(c).RemoteTS = append(child(c).RemoteTS, ts) },
		"Child.Protocol":     func(c *config.Config) { child(c).Protocol = proposal.ProtoAH },
		"Child.Proposals":    func(c *config.Config) { child(c).Proposals = append(child(c).Proposals, child(c).Proposals[0]) },
		"Child.Mode":         func(c *config.Config) { child(c).Mode = config.Transport },
		"Child.StartAction":  func(c *config.Config) { child(c).StartAction = config.ActionTrap },
		"Child.DPDAction":    func(c *config.Config) { child(c).DPDAction = config.ActionTrap },
		"Child.CloseAction":  func(c *config.Config) { child(c).CloseAction = config.ActionTrap },
		"Child.RekeyTime":    func(c *config.Config) { child(c).RekeyTime += second },
		"Child.LifeTime":     func(c *config.Config) { child(c).LifeTime += second },
		"Child.RandTime":     func(c *config.Config) { child(c).RandTime += second },
		"Child.RekeyBytes":   func(c *config.Config) { child(c).RekeyBytes++ },
		"Child.LifeBytes":    func(c *config.Config) { child(c).LifeBytes++ },
		"Child.RandBytes":    func(c *config.Config) { child(c).RandBytes++ },
		"Child.RekeyPackets": func(c *config.Config) { child(c).RekeyPackets++ },
		"Child.LifePackets":  func(c *config.Config) { child(c).LifePackets++ },
		"Child.RandPackets":  func(c *config.Config) { child(c).RandPackets++ },
		"Child.ReplayWindow": func(c *config.Config) { child(c).ReplayWindow *= 2 },
		"Child.TFCPadding":   func(c *config.Config) { child(c).TFCPadding = config.TFCPaddingMTU },
		"Child.CopyDF":       func(c *config.Config) { child(c).CopyDF = !child(c).CopyDF },
		"Child.CopyECN":      func(c *config.Config) { child(c).CopyECN = !child(c).CopyECN },
		"Child.CopyDSCP":     func(c *config.Config) { child(c).CopyDSCP = config.CopyDSCPNo },
		"Child.Inactivity":   func(c *config.Config) { child(c).Inactivity = time.Minute },

		"Pool.Name":  func(c *config.Config) { c.Pools = []*config.Pool{{Name: "x"}} },
		"Pool.First": func(c *config.Config) { c.Pools = []*config.Pool{{First: netip.MustParseAddr("10.9.0.1")}} },
		"Pool.Last":  func(c *config.Config) { c.Pools = []*config.Pool{{Last: netip.MustParseAddr("10.9.0.9")}} },
		"Pool.DNS":   func(c *config.Config) { c.Pools = []*config.Pool{{DNS: []netip.Addr{netip.MustParseAddr("10.9.0.1")}}} },
		"Pool.Subnets": func(c *config.Config) {
			c.Pools = []*config.Pool{{Subnets: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/16")}}}
		},

		"PrivateKey.Key": func(c *config.Config) { c.Secrets.Private = []*config.PrivateKey{{Key: key}} },
	}
	// Settings the runtime reads directly rather than through
	// runtimeView, and values that are not settings of their own.
	direct := map[string]string{
		"Config.File":       "the path given to Load; not a setting",
		"Config.Dir":        "resolves relative paths inside firmware/config; not a setting",
		"Config.Warnings":   "printed by `bitw check`; not a setting",
		"Device.Name":       "Runtime.Snapshot (status device) and the ready log line",
		"Device.Control":    "New: Options.Control opens the control socket there",
		"Device.LogLevel":   "New: the log level (r.level)",
		"Device.SaveKeys":   "New: Options.KeyLog opens the key log there; stackConfig: no ESP trains",
		"Management.Listen": "Run: the management server listens there",
		"Pool.Addrs":        "the range as written; IKE allocates from First..Last, derived from it",
		"SharedKey.Name":    "a section name; the key reaches the runtime as Connection.PSK",
		"SharedKey.IDs":     "select the key in firmware/config: Connection.PSK",
		"SharedKey.Secret":  "reaches the runtime as Connection.PSK",
		"PrivateKey.Name":   "a section name",
		"PrivateKey.File":   "where the key was read from; the key itself is PrivateKey.Key",
	}

	settings := configSettings()
	for _, s := range settings {
		_, changed := changes[s]
		_, read := direct[s]
		if changed == read {
			t.Errorf("config setting %s: list it once, with a change the runtime must honour or with where the runtime reads it", s)
		}
	}
	for s := range changes {
		if !slices.Contains(settings, s) {
			t.Errorf("%s is not a firmware/config setting", s)
		}
	}
	for s := range direct {
		if !slices.Contains(settings, s) {
			t.Errorf("%s is not a firmware/config setting", s)
		}
	}

	want := viewOf(t, base())
	if !reflect.DeepEqual(want, viewOf(t, base())) {
		t.Fatal("the runtime view of one configuration differs between two loads")
	}
	for name, change := range changes {
		cfg := base()
		change(cfg)
		if reflect.DeepEqual(viewOf(t, cfg), want) {
			t.Errorf("config setting %s: changing it changes nothing the runtime does", name)
		}
	}
}
