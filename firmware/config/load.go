package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/bitw-dev/bitw/ike/auth"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Options adjusts how Parse reaches the outside world.
type Options struct {
	// ReadFile reads the credential files the configuration names. nil
	// reads regular files of at most 64 KiB from the file system.
	ReadFile func(name string) ([]byte, error)
	// Now is the clock for certificate validity warnings; nil is time.Now.
	Now func() time.Time
}

// Load reads and validates the configuration file at path. On failure the
// error is an Errors value listing every problem as FILE:LINE: why.
func Load(path string) (*Config, error) {
	data, err := readRegularFile(path, maxConfigSize)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, Errors{tooLarge(path)}
	case err != nil:
		return nil, Errors{{File: path, Line: 1, Msg: "cannot read the configuration: " + unwrapPathError(err)}}
	}
	return Parse(path, data, Options{})
}

// unwrapPathError drops the path from an os error, since the message
// names the file already.
func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse validates a configuration held in data; file names it in messages
// and anchors relative paths.
func Parse(file string, data []byte, opts Options) (*Config, error) {
	if opts.ReadFile == nil {
		opts.ReadFile = func(name string) ([]byte, error) { return readRegularFile(name, maxCredentialSize) }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(data) > maxConfigSize {
		return nil, Errors{tooLarge(file)}
	}
	if !utf8.Valid(data) {
		return nil, Errors{{File: file, Line: 1 + strings.Count(string(data[:firstInvalidUTF8(data)]), "\n"), Msg: "the file is not UTF-8"}}
	}
	// Before the TOML parser, whose cost grows with the square of the
	// nesting depth.
	if line, why := checkShape(string(data)); line > 0 {
		return nil, Errors{{File: file, Line: line, Msg: why}}
	}
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		line, msg := 1, err.Error()
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line, msg = max(pe.Position.Line, 1), pe.Message
		}
		return nil, Errors{{File: file, Line: line, Msg: "TOML syntax: " + msg}}
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		dir = filepath.Dir(file)
	}
	l := &loader{
		decoder: &decoder{file: file, pos: scanPositions(string(data))},
		opts:    opts,
		cfg:     &Config{File: file, Dir: dir},
		pools:   make(map[string]*Pool),
	}
	l.load(l.root(tree))
	if len(l.errs) > 0 {
		return nil, Errors(sortDiagnostics(l.errs))
	}
	l.cfg.Warnings = sortDiagnostics(l.warns)
	return l.cfg, nil
}

func tooLarge(file string) Diagnostic {
	return Diagnostic{File: file, Line: 1, Msg: fmt.Sprintf("the file is larger than %d KiB; a bitw configuration is a few kilobytes", maxConfigSize>>10)}
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

type loader struct {
	*decoder
	opts  Options
	cfg   *Config
	pools map[string]*Pool
}

// Sections that bitw does not have, with the reason.
var unsupportedTop = map[string]string{
	"authorities": "give CA certificates per connection in remote.cacerts; bitw fetches no CRLs or OCSP",
}

func (l *loader) load(root *table) {
	dev, ok := root.sub("device")
	if !ok && !root.has("device") {
		l.errorf(nil, "no [device] section; it needs at least name = \"...\"")
	}
	if dev != nil {
		l.device(dev)
	}
	l.interfaces(root)
	if t, ok := root.sub("management"); ok {
		l.management(t)
	}
	if t, ok := root.sub("policy"); ok {
		l.policy(t)
	}
	if t, ok := root.sub("pools"); ok {
		for _, p := range t.each() {
			l.pool(p)
		}
		l.checkPoolOverlaps()
	}
	if t, ok := root.sub("secrets"); ok {
		for _, s := range t.each() {
			l.secret(s)
		}
	}
	conns, ok := root.sub("connections")
	if ok {
		for _, c := range conns.each() {
			l.connection(c)
		}
	}
	if len(l.cfg.Connections) == 0 && !root.has("connections") {
		l.warnf(nil, "no [connections]: bitw will protect nothing and %s all red traffic", l.cfg.Policy.Default)
	}
	l.checkDuplicateSelectors()
	root.done(unsupportedTop)
}

// validName admits names that CLI arguments (CONN/CHILD) and file names
// can carry unquoted.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isBareKeyChar(c) || c == '.') {
			return false
		}
	}
	return true
}

const nameRule = "use 1-64 letters, digits, '.', '_' or '-'"

// path resolves a file name relative to the configuration file.
func (l *loader) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.cfg.Dir, p)
}

// maxSocketPath is the room in sockaddr_un.sun_path, less the NUL.
const maxSocketPath = 107

func (l *loader) device(t *table) {
	dev := &l.cfg.Device
	if name, ok := t.str("name"); ok {
		if validName(name) {
			dev.Name = name
		} else {
			t.errorf("name", "%q: %s", name, nameRule)
		}
	} else if !t.has("name") {
		l.errorf(t.path, "[device] needs name = \"...\"")
	}
	dev.Control = filepath.Join(defaultControlDir, dev.Name+".sock")
	if c, ok := t.str("control"); ok {
		switch p := l.path(c); {
		case c == "":
			t.errorf("control", "give the socket's path")
		case len(p) > maxSocketPath:
			t.errorf("control", "%q is longer than the %d bytes a Unix socket path can hold", p, maxSocketPath)
		default:
			dev.Control = p
		}
	}
	dev.LogLevel = slog.LevelInfo
	if lv, ok := t.enum("log_level", "debug", "info", "warn", "error"); ok {
		_ = dev.LogLevel.UnmarshalText([]byte(lv))
	}
	if p, ok := t.str("save_keys"); ok && p != "" {
		dev.SaveKeys = l.path(p)
		t.warnf("save_keys", "session keys will be written to %s; for debugging only", dev.SaveKeys)
	}
	if v, ok := t.boolean("allow_legacy"); ok && v {
		dev.AllowLegacy = true
		t.warnf("allow_legacy", "3DES, SHA-1, MODP-1024 and MODP-1536 can be negotiated")
	}
	if v, ok := t.boolean("allow_integrity_only"); ok && v {
		dev.AllowIntegrityOnly = true
		t.warnf("allow_integrity_only", "AH and NULL encryption can be negotiated; red traffic then crosses the black network readable")
	}
	dev.MSSClamp = true
	if v, ok := t.get("mss_clamp"); ok {
		switch v := v.(type) {
		case bool:
			dev.MSSClamp = v
		case int64:
			// RFC 879: 536 is the smallest MSS every IPv4 host accepts.
			if v < 536 || v > 65495 {
				t.errorf("mss_clamp", "%d is out of range 536..65495", v)
			} else {
				dev.MSS = uint16(v)
			}
		default:
			t.wrongType("mss_clamp", v, "true, false or an MSS in bytes")
		}
	}
	t.done(nil)
}

func (l *loader) interfaces(root *table) {
	t, ok := root.sub("interfaces")
	if !ok {
		if !root.has("interfaces") {
			l.errorf(nil, "no [interfaces.red] and [interfaces.black] sections")
		}
		return
	}
	for _, k := range t.sortedKeys() {
		if k != "red" && k != "black" {
			t.get(k)
			t.errorf(k, "bitw has two ports, red and black")
		}
	}
	for _, role := range []string{"red", "black"} {
		it, ok := t.sub(role)
		if !ok {
			if !t.has(role) {
				l.errorf(t.path, "no [interfaces.%s] section", role)
			}
			continue
		}
		iface := l.iface(it, role)
		if role == "red" {
			l.cfg.Red = iface
		} else {
			l.cfg.Black = iface
		}
	}
	red, black := l.cfg.Red, l.cfg.Black
	if red.Link.Name != "" && red.Link == black.Link {
		l.errorf(t.path.add("black", "link"), "interfaces.black.link: red and black cannot share link %q", black.Link)
	}
	for _, r := range red.Addresses {
		for _, b := range black.Addresses {
			if r.Overlaps(b) {
				l.errorf(t.path.add("black", "address"), "interfaces.black.address: %s overlaps the red network %s; the ports must face different networks", b, r)
			}
		}
	}
}

func validLinkName(s string) bool {
	// Linux IFNAMSIZ is 16 with the NUL; names never hold '/', ':' or blanks.
	return s != "" && len(s) < 16 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n\x00")
}

func (l *loader) iface(t *table, role string) Interface {
	iface := Interface{MTU: defaultMTU}
	if s, ok := t.str("link"); ok {
		name, tap := strings.CutPrefix(s, "tap:")
		if !validLinkName(name) {
			t.errorf("link", "%q is not an interface name (1-15 characters, no '/', ':' or blanks), \"tap:NAME\" or a board port such as enet1", s)
		} else {
			iface.Link = Link{Name: name}
			if tap {
				iface.Link.Kind = LinkTAP
			}
		}
	} else if !t.has("link") {
		l.errorf(t.path, "[interfaces.%s] needs link = \"...\": a Linux interface, \"tap:NAME\" or a board port", role)
	}
	if items, ok := t.list("address"); ok {
		for _, it := range items {
			p, err := parseHostPrefix(it.s)
			if err != nil {
				l.errorf(it.path, "%s: %v", it.path, err)
				continue
			}
			if _, dup := iface.Address(p.Addr().Is4()); dup {
				l.errorf(it.path, "%s: one address per family; %s is a second one", it.path, p)
				continue
			}
			iface.Addresses = append(iface.Addresses, p)
		}
	} else if !t.has("address") {
		l.errorf(t.path, "[interfaces.%s] needs address = \"ADDRESS/PREFIXLEN\"", role)
	}
	if items, ok := t.list("gateway"); ok {
		for _, it := range items {
			g, err := parseAddr(it.s)
			if err != nil {
				l.errorf(it.path, "%s: %v", it.path, err)
				continue
			}
			own, hasOwn := iface.Address(g.Is4())
			switch {
			case !hasOwn:
				l.errorf(it.path, "%s: %s has no %s address on this port to reach it from", it.path, g, family(g))
			case !own.Contains(g):
				l.errorf(it.path, "%s: gateway %s is outside the port's network %s", it.path, g, own.Masked())
			case own.Addr() == g:
				l.errorf(it.path, "%s: gateway %s is the port's own address", it.path, g)
			default:
				if _, dup := iface.Gateway(g.Is4()); dup {
					l.errorf(it.path, "%s: one gateway per family", it.path)
					continue
				}
				iface.Gateways = append(iface.Gateways, g)
			}
		}
	}
	lo := int64(576) // RFC 791: every IPv4 host accepts 576-byte datagrams
	if _, has6 := iface.Address(false); has6 {
		lo = 1280 // RFC 8200 §5
	}
	if n, ok := t.integer("mtu", lo, 9216); ok {
		iface.MTU = int(n)
	}
	t.done(nil)
	return iface
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func (l *loader) management(t *table) {
	s, ok := t.str("listen")
	if !ok {
		t.done(nil)
		return
	}
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		t.errorf("listen", "%q is not ADDRESS:PORT, e.g. \"192.168.1.1:8080\" or \"[2001:db8::1]:8080\"", s)
	case ap.Port() == 0:
		t.errorf("listen", "give a port other than 0")
	case l.cfg.Red.Owns(ap.Addr()):
		l.cfg.Management.Listen = ap
	case l.cfg.Black.Owns(ap.Addr()):
		t.errorf("listen", "%s is the black address; the black port carries only IKE and ESP, so management listens on the red address", ap.Addr())
	default:
		t.errorf("listen", "%s is not one of the device's own addresses; use the red address %s", ap.Addr(), addrList(l.cfg.Red.Addresses))
	}
	t.done(nil)
}

func addrList(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Addr().String())
	}
	if len(s) == 0 {
		return "(none configured)"
	}
	return strings.Join(s, " or ")
}

func (l *loader) policy(t *table) {
	if d, ok := t.enum("default", "discard", "bypass"); ok && d == "bypass" {
		l.cfg.Policy.Default = Bypass
		t.warnf("default", "red traffic that no child covers leaves the black port in clear")
	}
	if rules, ok := t.tables("bypass"); ok {
		for _, r := range rules {
			if rule, ok := l.bypassRule(r); ok {
				l.cfg.Policy.Bypass = append(l.cfg.Policy.Bypass, rule)
			}
		}
	}
	t.done(nil)
}

func (l *loader) bypassRule(t *table) (BypassRule, bool) {
	var rule BypassRule
	good := true
	side := func(key string) AddressRange {
		s, ok := t.str(key)
		if !ok {
			if !t.has(key) {
				l.errorf(t.path, "%s: a bypass rule needs %s = \"SUBNET\" (0.0.0.0/0 for any)", t.path, key)
			}
			good = false
			return AddressRange{}
		}
		if strings.Contains(s, "[") {
			t.errorf(key, "give the protocol in proto and ports in local_port/remote_port, not in brackets")
			good = false
			return AddressRange{}
		}
		r, err := parseAddressRange(s)
		if err != nil {
			t.errorf(key, "%v", err)
			good = false
		}
		return r
	}
	local, remote := side("local"), side("remote")
	if good && local.Is4() != remote.Is4() {
		t.errorf("remote", "%s and %s are of different IP families", local, remote)
		good = false
	}
	var proto uint8
	if v, ok := t.get("proto"); ok {
		var err error
		switch v := v.(type) {
		case string:
			proto, err = parseProtocol(v)
		case int64:
			if v < 0 || v > 255 {
				err = fmt.Errorf("%d is not a protocol number 0-255", v)
			}
			proto = uint8(v)
		default:
			err = fmt.Errorf("want a protocol name or number, not %s", typeName(v))
		}
		if err != nil {
			t.errorf("proto", "%v", err)
			good = false
		}
	}
	if good && (proto == ProtoICMP && !local.Is4() || proto == ProtoICMPv6 && local.Is4()) {
		t.errorf("proto", "%s does not go with %s addresses", protocolName(proto), family(local.From))
		good = false
	}
	rule.Local = TrafficSelector{Addrs: local, Proto: proto, ToPort: 0xffff}
	rule.Remote = TrafficSelector{Addrs: remote, Proto: proto, ToPort: 0xffff}
	for _, p := range []struct {
		key string
		ts  *TrafficSelector
	}{{"local_port", &rule.Local}, {"remote_port", &rule.Remote}} {
		v, ok := t.get(p.key)
		if !ok {
			continue
		}
		if proto == ProtoAny || isICMP(proto) || !hasPorts(proto) {
			t.errorf(p.key, "ports need proto = tcp, udp, sctp or udplite")
			good = false
			continue
		}
		var lo, hi uint16
		var err error
		switch v := v.(type) {
		case int64:
			if v < 0 || v > 65535 {
				err = fmt.Errorf("%d is not a port", v)
			}
			lo, hi = uint16(v), uint16(v)
		case string:
			lo, hi, err = parsePortRange(v)
		default:
			err = fmt.Errorf("want a port or a range such as \"1000-2000\", not %s", typeName(v))
		}
		if err != nil {
			t.errorf(p.key, "%v", err)
			good = false
			continue
		}
		p.ts.FromPort, p.ts.ToPort = lo, hi
	}
	t.done(nil)
	return rule, good
}

var unsupportedPool = map[string]string{
	"nbns":          "NetBIOS name servers are not handed out",
	"dhcp":          "DHCP attributes are not handed out",
	"netmask":       "INTERNAL_IP4_NETMASK is not handed out; use subnet",
	"server":        "the server attribute is IKEv1's",
	"split_include": "split_include is the IKEv1 Cisco Unity extension; use subnet",
	"split_exclude": "split_exclude is the IKEv1 Cisco Unity extension",
}

func (l *loader) pool(t *table) {
	name := t.path[len(t.path)-1]
	if !validName(name) {
		l.errorf(t.path, "pool name %q: %s", name, nameRule)
		return
	}
	p := &Pool{Name: name}
	good := true
	if s, ok := t.str("addrs"); ok {
		r, err := parseAddressRange(s)
		if err != nil {
			t.errorf("addrs", "%v", err)
			good = false
		} else {
			p.Addrs, p.First, p.Last = r, r.From, r.To
			if pfx, isPrefix := r.Prefix(); isPrefix && strings.Contains(s, "/") {
				if pfx.Bits() < pfx.Addr().BitLen()-1 {
					p.First = r.From.Next()
					if r.Is4() {
						p.Last = r.To.Prev()
					}
				}
			}
		}
	} else {
		if !t.has("addrs") {
			l.errorf(t.path, "[pools.%s] needs addrs = \"SUBNET\" or \"FROM-TO\"", name)
		}
		good = false
	}
	if items, ok := t.list("dns"); ok {
		for _, it := range items {
			a, err := parseAddr(it.s)
			if err != nil {
				l.errorf(it.path, "%s: %v", it.path, err)
				continue
			}
			p.DNS = append(p.DNS, a)
		}
	}
	if items, ok := t.list("subnet"); ok {
		for _, it := range items {
			pfx, err := netip.ParsePrefix(it.s)
			if err != nil || pfx.Masked() != pfx {
				l.errorf(it.path, "%s: %q is not a subnet such as 10.0.0.0/8", it.path, it.s)
				continue
			}
			p.Subnets = append(p.Subnets, pfx)
		}
	}
	t.done(unsupportedPool)
	if good {
		l.cfg.Pools = append(l.cfg.Pools, p)
		l.pools[name] = p
	}
}

func (l *loader) checkPoolOverlaps() {
	for i, a := range l.cfg.Pools {
		for _, b := range l.cfg.Pools[i+1:] {
			if a.Addrs.Overlaps(b.Addrs) {
				l.errorf(keyPath{"pools", b.Name, "addrs"}, "pools.%s.addrs: %s overlaps pool %s (%s); pools must not overlap", b.Name, b.Addrs, a.Name, a.Addrs)
			}
		}
	}
}

// Secret types of swanctl.conf that bitw lacks, by section name prefix.
var unsupportedSecrets = []struct{ prefix, why string }{
	{"eap", "EAP is not supported; peers authenticate with psk, pubkey or null"},
	{"xauth", "XAuth is IKEv1's; bitw speaks IKEv2 only"},
	{"ntlm", "EAP-MSCHAPv2 is not supported"},
	{"ppk", "postquantum preshared keys (RFC 8784) are not supported; add an ML-KEM exchange to the proposals instead (ke1_mlkem768)"},
	{"pkcs8", "name the section private-NAME; its file may hold a PKCS #8 key"},
	{"pkcs12", "PKCS #12 containers are not supported; give the key in a private-NAME section and the certificate in certs"},
	{"token", "smartcards and PKCS #11 tokens are not supported"},
}

func (l *loader) secret(t *table) {
	name := t.path[len(t.path)-1]
	switch {
	case strings.HasPrefix(name, "ike"):
		l.sharedKey(t, name)
		return
	case strings.HasPrefix(name, "private"), strings.HasPrefix(name, "rsa"), strings.HasPrefix(name, "ecdsa"):
		l.privateKey(t, name)
		return
	}
	for _, u := range unsupportedSecrets {
		if strings.HasPrefix(name, u.prefix) {
			l.errorf(t.path, "[secrets.%s]: not supported by bitw: %s", name, u.why)
			return
		}
	}
	l.errorf(t.path, "[secrets.%s]: the section name must start with the secret's type, ike (pre-shared key) or private, rsa or ecdsa (private key), e.g. ike-%s", name, name)
}

// decodeSecret reads swanctl's secret encodings: 0x hex, 0s base64, or the
// string itself.
func decodeSecret(s string) ([]byte, error) {
	switch {
	case strings.HasPrefix(s, "0x"):
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, errors.New("the 0x prefix introduces hex, but the rest is not hex")
		}
		return b, nil
	case strings.HasPrefix(s, "0s"):
		b, err := base64.StdEncoding.DecodeString(s[2:])
		if err != nil {
			return nil, errors.New("the 0s prefix introduces base64, but the rest is not base64")
		}
		return b, nil
	}
	return []byte(s), nil
}

// minPSKLen is the pre-shared key length below which bitw warns: RFC 7296
// §2.15 wants a PSK as unpredictable as the strongest key negotiated, and
// a short one falls to an offline dictionary attack on a captured AUTH.
const minPSKLen = 16

func (l *loader) sharedKey(t *table, name string) {
	k := &SharedKey{Name: name}
	good := true
	for _, key := range t.sortedKeys() {
		if !strings.HasPrefix(key, "id") {
			continue
		}
		items, ok := t.rawList(key) // distinguished names hold commas
		if !ok {
			good = false
			continue
		}
		for _, it := range items {
			id, err := ParseIdentity(it.s)
			if err != nil {
				l.errorf(it.path, "%s: %v", it.path, err)
				good = false
				continue
			}
			k.IDs = append(k.IDs, id)
		}
	}
	if s, ok := t.str("secret"); ok {
		b, err := decodeSecret(s)
		switch {
		case err != nil:
			t.errorf("secret", "%v", err)
			good = false
		case len(b) == 0:
			t.errorf("secret", "the pre-shared key is empty")
			good = false
		case len(b) < minPSKLen:
			t.warnf("secret", "a %d-byte pre-shared key can be guessed offline from one captured exchange; use %d bytes or more", len(b), minPSKLen)
		}
		k.Secret = b
	} else {
		if !t.has("secret") {
			l.errorf(t.path, "[secrets.%s] needs secret = \"...\"", name)
		}
		good = false
	}
	t.done(nil)
	if good {
		l.cfg.Secrets.IKE = append(l.cfg.Secrets.IKE, k)
	}
}

func (l *loader) privateKey(t *table, name string) {
	file, ok := t.str("file")
	pass, _ := t.str("secret")
	t.done(nil)
	if !ok {
		if !t.has("file") {
			l.errorf(t.path, "[secrets.%s] needs file = \"KEY.pem\"", name)
		}
		return
	}
	path := l.path(file)
	data, err := l.opts.ReadFile(path)
	if err != nil {
		t.errorf("file", "cannot read the key: %s", unwrapPathError(err))
		return
	}
	key, err := auth.ParsePrivateKey(data, []byte(pass))
	if err != nil {
		t.errorf("file", "%s: %s", file, credError(err))
		return
	}
	kind := keyKind(key.Public())
	switch {
	case strings.HasPrefix(name, "rsa") && kind != "RSA",
		strings.HasPrefix(name, "ecdsa") && kind != "ECDSA":
		t.errorf("file", "%s holds an %s key, but the section name says %s", file, kind, strings.ToUpper(strings.SplitN(name, "-", 2)[0]))
		return
	}
	l.cfg.Secrets.Private = append(l.cfg.Secrets.Private, &PrivateKey{Name: name, File: path, Key: key})
}

// parseProposals reads proposal strings for proto; "default" stands for
// bitw's defaults, as swanctl's keyword does for strongSwan's.
func (l *loader) parseProposals(items []item, proto proposal.Protocol, defaults []string) []proposal.Proposal {
	var out []proposal.Proposal
	pol := l.cfg.Device.ProposalPolicy()
	for _, it := range items {
		strs := []string{it.s}
		if strings.EqualFold(it.s, "default") {
			if defaults == nil {
				l.errorf(it.path, "%s: bitw has no default %s proposals; name the algorithms, e.g. sha256", it.path, proto)
				continue
			}
			strs = defaults
		}
		for _, s := range strs {
			ps, err := proposal.Parse(s, proto)
			if err == nil {
				for _, p := range ps {
					if err = p.Check(pol); err != nil {
						break
					}
				}
			}
			if err != nil {
				l.errorf(it.path, "%s: %v", it.path, err)
				continue
			}
			out = append(out, ps...)
		}
	}
	return out
}

// defaultProposals parses built-in defaults, which are known good.
func defaultProposals(strs []string, proto proposal.Protocol) []proposal.Proposal {
	var out []proposal.Proposal
	for _, s := range strs {
		ps, err := proposal.Parse(s, proto)
		if err != nil {
			panic("config: bad default proposal " + s + ": " + err.Error())
		}
		out = append(out, ps...)
	}
	return out
}
