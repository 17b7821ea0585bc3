package config

import (
	"crypto/x509"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/bitw-dev/bitw/ike/auth"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// swanctl.conf connection options that bitw lacks, with the reason.
var unsupportedConn = map[string]string{
	"aggressive":     "Aggressive Mode is IKEv1's; bitw speaks IKEv2 only",
	"pull":           "Mode Config push/pull is IKEv1's; IKEv2 configuration payloads always pull",
	"dscp":           "bitw sends IKE packets with DSCP 0",
	"if_id_in":       "XFRM interface IDs are a Linux kernel feature",
	"if_id_out":      "XFRM interface IDs are a Linux kernel feature",
	"mediation":      "the IKEv2 Mediation Extension is not supported",
	"mediated_by":    "the IKEv2 Mediation Extension is not supported",
	"mediation_peer": "the IKEv2 Mediation Extension is not supported",
	"ppk_id":         "postquantum preshared keys (RFC 8784) are not supported; add an ML-KEM exchange to the proposals instead (ke1_mlkem768)",
	"ppk_required":   "postquantum preshared keys (RFC 8784) are not supported",
	"local_ts":       "traffic selectors belong to a child: connections.NAME.children.NAME.local_ts",
	"remote_ts":      "traffic selectors belong to a child: connections.NAME.children.NAME.remote_ts",
	"esp_proposals":  "ESP proposals belong to a child: connections.NAME.children.NAME.esp_proposals",
}

// swanctl.conf child options that bitw lacks, with the reason.
var unsupportedChild = map[string]string{
	"sha256_96":        "truncating HMAC-SHA-256 to 96 bits violates RFC 4868; fix the peer instead",
	"updown":           "bitw runs no scripts",
	"hostaccess":       "bitw runs no updown scripts",
	"policies":         "bitw always installs the child's policies",
	"policies_fwd_out": "bitw has no separate forward policies",
	"ipcomp":           "IPComp is not supported",
	"reqid":            "reqids are a Linux kernel feature",
	"priority":         "policy priorities are a Linux kernel feature",
	"interface":        "policies always apply to the red port",
	"mark_in":          "marks are a Linux kernel feature",
	"mark_in_sa":       "marks are a Linux kernel feature",
	"mark_out":         "marks are a Linux kernel feature",
	"set_mark_in":      "marks are a Linux kernel feature",
	"set_mark_out":     "marks are a Linux kernel feature",
	"if_id_in":         "XFRM interface IDs are a Linux kernel feature",
	"if_id_out":        "XFRM interface IDs are a Linux kernel feature",
	"label":            "security labels are not supported",
	"label_mode":       "security labels are not supported",
	"hw_offload":       "bitw chooses its crypto engine itself",
	"proposals":        "a child's proposals are esp_proposals (or ah_proposals)",
}

var unsupportedAuth = map[string]string{
	"round":       "bitw performs one authentication round per side",
	"eap_id":      "EAP is not supported",
	"aaa_id":      "EAP is not supported",
	"xauth_id":    "XAuth is IKEv1's",
	"groups":      "group membership checks are not supported",
	"cert_policy": "certificate policy checks are not supported",
	"ca_id":       "give the CA certificate itself in cacerts",
	"pubkeys":     "bitw's IKE has no raw public key authentication (RFC 7670); authenticate with certificates (certs, cacerts)",
}

const anyAddr = "%any"

func (l *loader) connection(t *table) {
	name := t.path[len(t.path)-1]
	if !validName(name) {
		l.errorf(t.path, "connection name %q: %s", name, nameRule)
		return
	}
	c := &Connection{
		Name:        name,
		LocalPort:   defaultIKEPort,
		RemotePort:  defaultIKEPort,
		DPDTimeout:  defaultDPDTimeout,
		SendCertReq: true,
		KeyingTries: 1,
		RekeyTime:   defaultIKERekey,
	}
	if v, ok := t.integer("version", math.MinInt64, math.MaxInt64); ok && v != 2 {
		t.errorf("version", "bitw speaks IKEv2 only; set 2 or leave it out")
	}
	l.localAddrs(t, c)
	l.remoteAddrs(t, c)
	if n, ok := t.integer("local_port", 1, 65535); ok {
		c.LocalPort = uint16(n)
	}
	if n, ok := t.integer("remote_port", 1, 65535); ok {
		c.RemotePort = uint16(n)
	}
	if items, ok := t.list("proposals"); ok {
		c.Proposals = l.parseProposals(items, proposal.ProtoIKE, DefaultIKEProposals())
	} else {
		c.Proposals = defaultProposals(DefaultIKEProposals(), proposal.ProtoIKE)
	}
	if items, ok := t.list("vips"); ok {
		for _, it := range items {
			a, err := parseAddr(it.s)
			if err != nil {
				l.errorf(it.path, "%s: %v (0.0.0.0 or :: asks for any address)", it.path, err)
				continue
			}
			c.VIPs = append(c.VIPs, a)
		}
	}
	c.Encap, _ = t.boolean("encap")
	if v, ok := t.boolean("mobike"); ok && v {
		t.errorf("mobike", "MOBIKE (RFC 4555) is not supported; set mobike = false or leave it out")
	}
	if d, ok := t.duration("dpd_delay", 0, day); ok {
		c.DPDDelay = d
	}
	if d, ok := t.duration("dpd_timeout", 5*time.Second, time.Hour); ok {
		c.DPDTimeout = d
	}
	if v, ok := t.yesNoEnum("fragmentation", "yes", "accept", "force", "no"); ok {
		switch v {
		case "accept":
			c.Fragmentation = FragmentAccept
		case "no":
			c.Fragmentation = FragmentNo
		case "force":
			t.errorf("fragmentation", "force applies to IKEv1 only; IKEv2 fragments only when the peer announced support (RFC 7383 §2.5), which \"yes\" does")
		}
	}
	if v, ok := t.enum("childless", "allow", "force", "never"); ok {
		c.Childless = map[string]Childless{"allow": ChildlessAllow, "force": ChildlessForce, "never": ChildlessNever}[v]
	}
	if v, ok := t.boolean("send_certreq"); ok {
		c.SendCertReq = v
	}
	if v, ok := t.enum("send_cert", "ifasked", "always", "never"); ok {
		c.SendCert = map[string]SendCert{"ifasked": SendCertIfAsked, "always": SendCertAlways, "never": SendCertNever}[v]
	}
	if n, ok := t.integer("keyingtries", 0, math.MaxInt32); ok {
		c.KeyingTries = int(n)
	}
	if v, ok := t.enum("unique", "no", "never", "replace", "keep"); ok {
		c.Unique = map[string]Unique{"no": UniqueNo, "never": UniqueNever, "replace": UniqueReplace, "keep": UniqueKeep}[v]
	}
	if d, ok := t.duration("reauth_time", 0, maxDuration); ok && d != 0 {
		t.errorf("reauth_time", "IKE reauthentication is not supported; bitw rekeys the IKE SA in place (rekey_time), and a new IKE SA re-checks credentials")
	}
	l.ikeLifetimes(t, c)
	if items, ok := t.list("pools"); ok {
		for _, it := range items {
			p, ok := l.pools[it.s]
			if !ok {
				l.errorf(it.path, "%s: no pool %q in [pools]", it.path, it.s)
				continue
			}
			c.Pools = append(c.Pools, p)
		}
	}
	for _, k := range t.sortedKeys() {
		if k != "local" && k != "remote" && (strings.HasPrefix(k, "local") || strings.HasPrefix(k, "remote")) && !strings.Contains(k, "_") {
			t.get(k)
			t.errorf(k, "bitw performs one authentication round per side (no RFC 4739); name the sections local and remote")
		}
	}
	local, hasLocal := t.sub("local")
	remote, hasRemote := t.sub("remote")
	if !hasLocal && !t.has("local") {
		l.errorf(t.path, "[connections.%s] needs a local section saying how bitw authenticates, e.g. local = { auth = \"psk\", id = \"gw-a.example\" }", name)
	}
	if !hasRemote && !t.has("remote") {
		l.errorf(t.path, "[connections.%s] needs a remote section saying how the peer authenticates, e.g. remote = { auth = \"psk\", id = \"gw-b.example\" }", name)
	}
	if hasLocal {
		c.Local = l.auth(local, c, true)
	}
	if hasRemote {
		c.Remote = l.auth(remote, c, false)
	}
	if hasLocal && hasRemote {
		l.resolvePSK(t, c)
	}
	if children, ok := t.sub("children"); ok {
		for _, ct := range children.each() {
			if ch := l.child(ct, c); ch != nil {
				c.Children = append(c.Children, ch)
			}
		}
	}
	if len(c.Children) == 0 && !t.has("children") {
		l.warnf(t.path, "[connections.%s] has no children, so its IKE SA carries no traffic", name)
	}
	t.done(unsupportedConn)
	l.cfg.Connections = append(l.cfg.Connections, c)
}

func (l *loader) localAddrs(t *table, c *Connection) {
	black := l.cfg.Black.Addresses
	items, ok := t.list("local_addrs")
	if !ok || len(items) == 1 && items[0].s == anyAddr {
		for _, p := range black {
			c.LocalAddrs = append(c.LocalAddrs, p.Addr())
		}
		return
	}
	for _, it := range items {
		a, err := parseAddr(it.s)
		switch {
		case it.s == anyAddr:
			l.errorf(it.path, "%s: %%any cannot be combined with addresses", it.path)
		case err != nil:
			l.errorf(it.path, "%s: %v; bitw's IKE runs on the black port's own address", it.path, err)
		case !l.cfg.Black.Owns(a):
			l.errorf(it.path, "%s: %s is not the black port's address (%s); IKE runs on the black port", it.path, a, addrList(black))
		default:
			c.LocalAddrs = append(c.LocalAddrs, a)
		}
	}
}

func (l *loader) remoteAddrs(t *table, c *Connection) {
	items, ok := t.list("remote_addrs")
	if !ok || len(items) == 1 && items[0].s == anyAddr {
		return
	}
	for _, it := range items {
		if it.s == anyAddr {
			l.errorf(it.path, "%s: %%any cannot be combined with addresses", it.path)
			continue
		}
		r, err := parseAddressRange(it.s)
		if err != nil {
			if looksLikeHostname(it.s) {
				l.errorf(it.path, "%s: %q: bitw resolves no DNS names; give the peer's address", it.path, it.s)
			} else {
				l.errorf(it.path, "%s: %v", it.path, err)
			}
			continue
		}
		if r.Single() {
			l.checkReachable(it.path, r.From)
		}
		c.RemoteAddrs = append(c.RemoteAddrs, r)
	}
}

// checkReachable checks that the black port can reach a peer address:
// on its link, or through its gateway.
func (l *loader) checkReachable(p keyPath, a netip.Addr) {
	black := l.cfg.Black
	if len(black.Addresses) == 0 {
		return // already reported
	}
	if _, ok := black.Address(a.Is4()); !ok {
		l.errorf(p, "%s: the black port has no %s address to reach %s from", p, family(a), a)
		return
	}
	if black.Owns(a) || l.cfg.Red.OnLink(a) {
		l.errorf(p, "%s: %s is on the device itself or behind its red port, not a peer across the black network", p, a)
		return
	}
	if _, gw := black.Gateway(a.Is4()); !black.OnLink(a) && !gw {
		l.errorf(p, "%s: %s is outside the black network and [interfaces.black] has no gateway", p, a)
	}
}

// ikeLifetimes applies swanctl's rules: over_time defaults to 10% of
// rekey_time and rand_time to over_time.
func (l *loader) ikeLifetimes(t *table, c *Connection) {
	if d, ok := t.duration("rekey_time", 0, maxDuration); ok {
		c.RekeyTime = d
	}
	c.OverTime = c.RekeyTime / 10
	if d, ok := t.duration("over_time", 0, maxDuration); ok {
		c.OverTime = d
	}
	c.RandTime = c.OverTime
	if d, ok := t.duration("rand_time", 0, maxDuration); ok {
		c.RandTime = d
	}
	if c.RekeyTime > 0 && c.RandTime >= c.RekeyTime {
		key := "rand_time"
		if !t.has(key) {
			key = "over_time"
		}
		t.errorf(key, "rand_time (%s) must be shorter than rekey_time (%s)", formatDuration(c.RandTime), formatDuration(c.RekeyTime))
	}
}

func (l *loader) auth(t *table, c *Connection, local bool) Auth {
	var a Auth
	if v, ok := t.get("auth"); ok {
		s, isStr := v.(string)
		switch {
		case !isStr:
			t.wrongType("auth", v, `"psk", "pubkey" or "null"`)
		case s == "psk":
			a.Method = AuthPSK
		case s == "pubkey":
			a.Method = AuthPubkey
		case s == "null":
			a.Method = AuthNull
		case strings.HasPrefix(s, "eap"), strings.HasPrefix(s, "xauth"):
			t.errorf("auth", "%q: EAP and XAuth are not supported; use psk, pubkey or null", s)
		case strings.HasPrefix(s, "pubkey"), strings.HasPrefix(s, "rsa"), strings.HasPrefix(s, "ecdsa"), strings.HasPrefix(s, "ike:"), strings.HasPrefix(s, "ed25519"):
			t.errorf("auth", "%q: write pubkey; bitw negotiates the signature scheme (RFC 7427) and takes no constraints", s)
		default:
			t.errorf("auth", "%q is not psk, pubkey or null", s)
		}
	}
	if s, ok := t.str("id"); ok {
		id, err := ParseIdentity(s)
		switch {
		case err != nil:
			t.errorf("id", "%v", err)
		case local && id.IsAny():
			t.errorf("id", "bitw must send a concrete identity; %%any only matches peers")
		default:
			a.ID = id
		}
	}
	for _, k := range t.sortedKeys() {
		if (strings.HasPrefix(k, "cert") || strings.HasPrefix(k, "cacert")) && k != "certs" && k != "cacerts" && k != "cert_policy" {
			t.get(k)
			t.errorf(k, "give certificate files as a list: certs = [\"FILE.pem\"] or cacerts = [...]")
		}
	}
	a.Certs = l.certs(t, "certs", false)
	if local {
		l.localAuth(t, c, &a)
	} else {
		a.CACerts = l.certs(t, "cacerts", true)
		if v, ok := t.enum("revocation", "relaxed", "ifuri", "strict"); ok && v != "relaxed" {
			t.errorf("revocation", "bitw fetches no CRLs or OCSP responses, so only relaxed is available")
		}
		l.remoteAuth(t, &a)
	}
	t.done(unsupportedAuth)
	return a
}

func (l *loader) localAuth(t *table, c *Connection, a *Auth) {
	switch a.Method {
	case AuthPubkey:
		if len(a.Certs) == 0 && !t.has("certs") {
			l.errorf(t.path, "%s: pubkey authentication needs certs = [\"CERT.pem\"]", t.path)
			return
		}
		for i, cert := range a.Certs {
			k := l.findPrivateKey(cert.PublicKey)
			if k == nil {
				l.errorf(t.at("certs").add(index(i)), "%s: no private-, rsa- or ecdsa- secret holds the private key of certificate %q", t.at("certs").add(index(i)), cert.Subject)
				continue
			}
			if i == 0 {
				a.Key = k.Key
			}
		}
		if len(a.Certs) > 0 {
			if a.ID.Data == nil && a.ID.Type == IDAny {
				a.ID = Identity{Type: IDDN, Data: a.Certs[0].RawSubject}
			} else if !certHasIdentity(a.Certs[0], a.ID) {
				t.errorf("id", "%q is neither the subject nor a subjectAltName of certificate %q", a.ID, a.Certs[0].Subject)
			}
		}
	case AuthPSK:
		l.noCredentials(t, a, "psk")
	case AuthNull:
		l.noCredentials(t, a, "null")
		if t.has("id") {
			t.errorf("id", "null authentication sends ID_NULL (RFC 7619 §3); leave id out")
		}
		a.ID = Identity{Type: IDNull}
		return
	}
	if a.ID.Type == IDAny && len(c.LocalAddrs) > 0 {
		// strongSwan's default: the address IKE runs on.
		a.ID = addrIdentity(c.LocalAddrs[0])
	}
}

func (l *loader) remoteAuth(t *table, a *Auth) {
	switch a.Method {
	case AuthPubkey:
		if len(a.Certs) == 0 && len(a.CACerts) == 0 && !t.has("certs") && !t.has("cacerts") {
			l.errorf(t.path, "%s: pubkey authentication needs something to trust: cacerts or certs", t.path)
		}
	case AuthPSK:
		l.noCredentials(t, a, "psk")
		if !t.has("id") || a.ID.IsAny() && a.ID.text != "" {
			l.errorf(t.path, "%s: psk authentication needs the peer's id, which selects the pre-shared key", t.path)
		}
	case AuthNull:
		l.noCredentials(t, a, "null")
		l.warnf(t.path, "%s: null authentication accepts any peer, including an attacker in the middle", t.path)
	}
}

func (l *loader) noCredentials(t *table, a *Auth, method string) {
	for _, k := range []string{"certs", "cacerts"} {
		if t.has(k) {
			t.errorf(k, "%s authentication uses no certificates; remove %s or use auth = \"pubkey\"", method, k)
		}
	}
}

func (l *loader) findPrivateKey(pub any) *PrivateKey {
	for _, k := range l.cfg.Secrets.Private {
		if sameKey(k.Key.Public(), pub) {
			return k
		}
	}
	return nil
}

func (l *loader) certs(t *table, key string, ca bool) []*x509.Certificate {
	items, ok := t.list(key)
	if !ok {
		return nil
	}
	var out []*x509.Certificate
	now := l.opts.Now()
	for _, it := range items {
		data, err := l.opts.ReadFile(l.path(it.s))
		if err != nil {
			l.errorf(it.path, "%s: cannot read the certificate: %s", it.path, unwrapPathError(err))
			continue
		}
		cert, err := auth.ParseCertificate(data)
		if err != nil {
			l.errorf(it.path, "%s: %s: %s", it.path, it.s, credError(err))
			continue
		}
		if ca && cert.BasicConstraintsValid && !cert.IsCA {
			l.errorf(it.path, "%s: %s is not a CA certificate (basicConstraints CA:FALSE)", it.path, it.s)
			continue
		}
		switch {
		case now.After(cert.NotAfter):
			l.warnf(it.path, "%s: %s expired on %s", it.path, it.s, cert.NotAfter.UTC().Format(time.DateOnly))
		case now.Before(cert.NotBefore):
			l.warnf(it.path, "%s: %s is not valid before %s", it.path, it.s, cert.NotBefore.UTC().Format(time.DateOnly))
		}
		out = append(out, cert)
	}
	return out
}

// resolvePSK picks the connection's pre-shared key as strongSwan does: the
// ike secret whose identities best match the pair (both ids, then the
// peer's, then ours, then a secret without ids). Two different secrets
// that match equally well are an error rather than a silent choice.
func (l *loader) resolvePSK(t *table, c *Connection) {
	if c.Local.Method != AuthPSK && c.Remote.Method != AuthPSK {
		return
	}
	best, bestScore := []*SharedKey(nil), 0
	for _, k := range l.cfg.Secrets.IKE {
		score := 1 // a secret without ids matches every pair
		if len(k.IDs) > 0 {
			score = 0
			for _, id := range k.IDs {
				if id.Equal(c.Remote.ID) {
					score |= 4
				}
				if id.Equal(c.Local.ID) {
					score |= 2
				}
			}
		}
		switch {
		case score > bestScore:
			best, bestScore = []*SharedKey{k}, score
		case score == bestScore && score > 0:
			best = append(best, k)
		}
	}
	p := t.at("remote")
	if len(best) == 0 {
		l.errorf(p, "%s: no [secrets.ike-*] section has id = %q, the peer's identity, so there is no pre-shared key for this connection", p, c.Remote.ID)
		return
	}
	for _, k := range best[1:] {
		if string(k.Secret) != string(best[0].Secret) {
			l.errorf(p, "%s: secrets %s and %s both match this connection's identities with different keys", p, best[0].Name, k.Name)
			return
		}
	}
	c.PSK = best[0].Secret
}

func (l *loader) child(t *table, c *Connection) *Child {
	name := t.path[len(t.path)-1]
	if !validName(name) {
		l.errorf(t.path, "child name %q: %s", name, nameRule)
		return nil
	}
	ch := &Child{
		Name:         name,
		Protocol:     proposal.ProtoESP,
		RekeyTime:    defaultChildRekey,
		ReplayWindow: defaultReplayWindow,
		CopyDF:       true,
		CopyECN:      true,
	}
	ch.LocalTS = l.selectors(t, "local_ts")
	ch.RemoteTS = l.selectors(t, "remote_ts")
	esp, hasESP := t.list("esp_proposals")
	ah, hasAH := t.list("ah_proposals")
	switch {
	case hasESP && hasAH:
		t.errorf("ah_proposals", "give esp_proposals or ah_proposals, not both: bitw negotiates no AH+ESP bundles")
	case hasAH:
		ch.Protocol = proposal.ProtoAH
		ch.Proposals = l.parseProposals(ah, proposal.ProtoAH, nil)
	case hasESP:
		ch.Proposals = l.parseProposals(esp, proposal.ProtoESP, DefaultESPProposals())
	default:
		ch.Proposals = defaultProposals(DefaultESPProposals(), proposal.ProtoESP)
	}
	if v, ok := t.enum("mode", "tunnel", "transport", "beet", "transport_proxy", "pass", "drop"); ok {
		switch v {
		case "transport":
			ch.Mode = Transport
		case "beet", "transport_proxy":
			t.errorf("mode", "%s mode is not supported; use tunnel or transport", v)
		case "pass", "drop":
			t.errorf("mode", "shunts are not children in bitw: use [policy] bypass rules to pass traffic; uncovered traffic is dropped by default")
		}
	}
	ch.StartAction = l.action(t, "start_action", "none", "trap", "start")
	ch.DPDAction = l.action(t, "dpd_action", "clear", "trap", "restart")
	ch.CloseAction = l.action(t, "close_action", "none", "trap", "start")
	l.childLifetimes(t, ch)
	if n, ok := t.integer("replay_window", 0, maxReplayWindow); ok {
		if n < minReplayWindow {
			t.errorf("replay_window", "%d is too small: anti-replay protection stays on, with a window of %d to %d packets (RFC 4303 §3.4.3 recommends 64)", n, minReplayWindow, maxReplayWindow)
		} else {
			ch.ReplayWindow = uint32(n)
		}
	}
	if v, ok := t.get("tfc_padding"); ok {
		switch v := v.(type) {
		case int64:
			switch {
			case v < 0 || v > 65535:
				t.errorf("tfc_padding", "%d is out of range 0..65535", v)
			case v > 0:
				t.errorf("tfc_padding", "not supported by bitw: padding to a minimum size; bitw pads every packet to the path MTU, write tfc_padding = \"mtu\"")
			}
		case string:
			if v == "mtu" {
				ch.TFCPadding = TFCPaddingMTU
			} else {
				t.errorf("tfc_padding", "%q: give \"mtu\", or 0 for none", v)
			}
		default:
			t.wrongType("tfc_padding", v, `"mtu" or 0`)
		}
		if ch.TFCPadding != 0 && (ch.Mode == Transport || ch.Protocol == proposal.ProtoAH) {
			t.errorf("tfc_padding", "TFC padding needs ESP in tunnel mode, where the inner IP header tells the receiver where the padding starts (RFC 4303 §2.7)")
		}
	}
	if v, ok := t.boolean("copy_df"); ok {
		ch.CopyDF = v
	}
	if v, ok := t.boolean("copy_ecn"); ok {
		ch.CopyECN = v
	}
	if v, ok := t.yesNoEnum("copy_dscp", "out", "no", "in", "yes"); ok {
		switch v {
		case "no":
			ch.CopyDSCP = CopyDSCPNo
		case "in", "yes":
			t.errorf("copy_dscp", "%q: not supported by bitw: the black network's DSCP marks are never copied onto red traffic; use \"out\" or \"no\"", v)
		}
	}
	if d, ok := t.duration("inactivity", 0, maxDuration); ok {
		ch.Inactivity = d
	}
	t.done(unsupportedChild)
	l.checkChild(t, c, ch)
	return ch
}

func (l *loader) action(t *table, key string, words ...string) Action {
	v, ok := t.get(key)
	if !ok {
		return ActionNone
	}
	if s, isStr := v.(string); isStr && strings.Contains(s, "|") {
		t.errorf(key, "%q: choose one action", s)
		return ActionNone
	}
	s, ok := t.enumValue(key, v, words)
	if !ok {
		return ActionNone
	}
	switch s {
	case "trap":
		return ActionTrap
	case "start", "restart":
		return ActionStart
	}
	return ActionNone
}

func (l *loader) selectors(t *table, key string) []TrafficSelector {
	items, ok := t.list(key)
	if !ok {
		if t.has(key) {
			return nil
		}
		return []TrafficSelector{{Dynamic: true, ToPort: 0xffff}}
	}
	var out []TrafficSelector
	for _, it := range items {
		ts, err := ParseTrafficSelector(it.s)
		if err != nil {
			l.errorf(it.path, "%s: %v", it.path, err)
			continue
		}
		out = append(out, ts)
	}
	return out
}

// childLifetimes applies swanctl's rules: life is rekey plus 10%, and the
// jitter is the difference.
func (l *loader) childLifetimes(t *table, ch *Child) {
	if d, ok := t.duration("rekey_time", 0, maxDuration); ok {
		ch.RekeyTime = d
	}
	ch.LifeTime = ch.RekeyTime + ch.RekeyTime/10
	if d, ok := t.duration("life_time", 0, maxDuration); ok {
		ch.LifeTime = d
	}
	ch.RandTime = ch.LifeTime - ch.RekeyTime
	if d, ok := t.duration("rand_time", 0, maxDuration); ok {
		ch.RandTime = d
	}
	checkLimits(t, "time", uint64(ch.RekeyTime), uint64(ch.LifeTime), uint64(ch.RandTime), func(v uint64) string { return formatDuration(time.Duration(v)) })

	ch.RekeyBytes, _ = t.bytes("rekey_bytes")
	ch.LifeBytes = addTenth(ch.RekeyBytes)
	if v, ok := t.bytes("life_bytes"); ok {
		ch.LifeBytes = v
	}
	ch.RandBytes = ch.LifeBytes - min(ch.RekeyBytes, ch.LifeBytes)
	if v, ok := t.bytes("rand_bytes"); ok {
		ch.RandBytes = v
	}
	checkLimits(t, "bytes", ch.RekeyBytes, ch.LifeBytes, ch.RandBytes, func(v uint64) string { return fmt.Sprint(v) })

	ch.RekeyPackets, _ = t.count("rekey_packets")
	ch.LifePackets = addTenth(ch.RekeyPackets)
	if v, ok := t.count("life_packets"); ok {
		ch.LifePackets = v
	}
	ch.RandPackets = ch.LifePackets - min(ch.RekeyPackets, ch.LifePackets)
	if v, ok := t.count("rand_packets"); ok {
		ch.RandPackets = v
	}
	checkLimits(t, "packets", ch.RekeyPackets, ch.LifePackets, ch.RandPackets, func(v uint64) string { return fmt.Sprint(v) })
}

func addTenth(v uint64) uint64 {
	if v > math.MaxUint64/11*10 {
		return math.MaxUint64
	}
	return v + v/10
}

// checkLimits checks one rekey/life/rand triple: rekeying must come
// before the hard limit, and the jitter must not reach back to zero.
func checkLimits(t *table, unit string, rekey, life, rand uint64, show func(uint64) string) {
	if rekey > 0 && life > 0 && life <= rekey {
		key := "life_" + unit
		if !t.has(key) {
			key = "rekey_" + unit
		}
		t.errorf(key, "life_%s (%s) must be longer than rekey_%s (%s), or the SA dies before it is rekeyed", unit, show(life), unit, show(rekey))
	}
	if rekey > 0 && rand >= rekey {
		key := "rand_" + unit
		if !t.has(key) {
			key = "life_" + unit // the default jitter is life minus rekey
		}
		if !t.has(key) {
			key = "rekey_" + unit
		}
		t.errorf(key, "rand_%s (%s) must be smaller than rekey_%s (%s)", unit, show(rand), unit, show(rekey))
	}
}

// looksLikeHostname reports whether s reads as a DNS name rather than a
// mistyped address.
func looksLikeHostname(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9' || c == '.' || c == '-':
		default:
			return false
		}
	}
	return letter && !strings.HasPrefix(s, "-")
}
