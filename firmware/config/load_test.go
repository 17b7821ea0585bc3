package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The base configuration of the table tests, as slots that a case can
// replace. "omit" drops a slot's section header too.
var baseSlots = []struct{ header, slot, content string }{
	{"[device]", "device", `name = "gw-a"`},
	{"[interfaces.red]", "red", "link = \"red0\"\naddress = \"192.168.1.1/24\""},
	{"[interfaces.black]", "black", "link = \"black0\"\naddress = \"203.0.113.1/24\""},
	{"[connections.site-b]", "conn", "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"},
	{"[connections.site-b.children.lan]", "child", "local_ts = [\"192.168.1.0/24\"]\nremote_ts = [\"192.168.2.0/24\"]"},
	{"[secrets.ike-b]", "secret", "id = \"gw-b.example\"\nsecret = \"0123456789abcdef0123\""},
	{"", "extra", ""},
}

func build(slots map[string]string) string {
	var b strings.Builder
	for _, s := range baseSlots {
		content, ok := slots[s.slot]
		if !ok {
			content = s.content
		}
		if content == "omit" {
			continue
		}
		if s.header != "" {
			b.WriteString(s.header + "\n")
		}
		b.WriteString(content + "\n\n")
	}
	return b.String()
}

// marked returns the line holding the "#<-" marker.
func marked(src string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "#<-") {
			return i + 1
		}
	}
	return 0
}

// loadIn writes src as bitw.toml into a directory holding the test PKI
// and loads it.
func loadIn(t *testing.T, dir, src string) (*Config, error) {
	t.Helper()
	path := filepath.Join(dir, "bitw.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

type ruleCase struct {
	name  string
	slots map[string]string
	want  string // a substring of the message
	line  int    // expected line; 0: the line marked #<-
	warn  bool   // a warning, and the configuration loads
}

func TestRules(t *testing.T) {
	dir := t.TempDir()
	testCreds(t, dir)
	pubkeyConn := func(local, remote string) map[string]string {
		return map[string]string{
			"conn":   "remote_addrs = [\"203.0.113.2\"]\nlocal = " + local + "\nremote = " + remote,
			"secret": "omit",
			"extra":  "[secrets.private-a]\nfile = \"gw-a.key\"",
		}
	}
	cases := []ruleCase{
		// TOML and structure.
		{name: "syntax", slots: map[string]string{"device": "name = \"gw-a\"\nlog_level = #<-"}, want: "TOML syntax"},
		{name: "duplicate key", slots: map[string]string{"device": "name = \"gw-a\"\nname = \"b\" #<-"}, want: "TOML syntax"},
		{name: "not UTF-8", slots: map[string]string{"device": "name = \"gw-a\"\n# \xff #<-"}, want: "not UTF-8"},
		{name: "unknown section", slots: map[string]string{"extra": "[vpn] #<-\nx = 1"}, want: "vpn: unknown key in the top level"},
		{name: "swanctl authorities", slots: map[string]string{"extra": "[authorities.ca] #<-\ncacert = \"ca.pem\""}, want: "not supported by bitw"},
		{name: "unknown key suggests", slots: map[string]string{"device": "name = \"gw-a\"\nlog_levle = \"info\" #<-"}, want: `(did you mean "log_level"?)`},
		{name: "quoted unknown key", slots: map[string]string{"device": "name = \"gw-a\"\n\"x y\" = 1 #<-"}, want: `"x y": unknown key in [device]`},
		{name: "bool as string", slots: map[string]string{"device": "name = \"gw-a\"\nallow_legacy = \"yes\" #<-"}, want: `want true or false (a TOML boolean), not the string "yes"`},
		{name: "string as int", slots: map[string]string{"device": "name = 5 #<-"}, want: "want a string, not an integer"},
		// [device]
		{name: "no device", slots: map[string]string{"device": "omit"}, want: "no [device] section", line: 1},
		{name: "device without name", slots: map[string]string{"device": "log_level = \"info\"", "red": "link = \"red0\"\naddress = \"192.168.1.1/24\" #<-"}, want: "needs name", line: 1},
		{name: "bad device name", slots: map[string]string{"device": "name = \"gw/a\" #<-"}, want: "letters, digits"},
		{name: "socket path too long", slots: map[string]string{"device": "name = \"gw-a\"\ncontrol = \"/" + strings.Repeat("x", 120) + "\" #<-"}, want: "Unix socket path"},
		{name: "log level", slots: map[string]string{"device": "name = \"gw-a\"\nlog_level = \"trace\" #<-"}, want: `"trace" is not one of "debug", "info", "warn" or "error"`},
		{name: "mss range", slots: map[string]string{"device": "name = \"gw-a\"\nmss_clamp = 100 #<-"}, want: "out of range 536..65495"},
		{name: "mss type", slots: map[string]string{"device": "name = \"gw-a\"\nmss_clamp = \"on\" #<-"}, want: "true, false or an MSS"},
		{name: "save_keys warns", slots: map[string]string{"device": "name = \"gw-a\"\nsave_keys = \"keys\" #<-"}, want: "for debugging only", warn: true},
		{name: "allow_legacy warns", slots: map[string]string{"device": "name = \"gw-a\"\nallow_legacy = true #<-"}, want: "3DES", warn: true},
		// [interfaces]
		{name: "no interfaces", slots: map[string]string{"red": "omit", "black": "omit"}, want: "no [interfaces.red] and [interfaces.black]", line: 1},
		{name: "third port", slots: map[string]string{"extra": "[interfaces.mgmt] #<-\nlink = \"eth9\""}, want: "two ports, red and black"},
		{name: "no link", slots: map[string]string{"red": "address = \"192.168.1.1/24\""}, want: "needs link", line: 4},
		{name: "bad link", slots: map[string]string{"red": "link = \"red/0\" #<-\naddress = \"192.168.1.1/24\""}, want: "is not an interface name"},
		{name: "long link", slots: map[string]string{"red": "link = \"tap:abcdefghijklmnop\" #<-\naddress = \"192.168.1.1/24\""}, want: "is not an interface name"},
		{name: "address without length", slots: map[string]string{"red": "link = \"red0\"\naddress = \"192.168.1.1\" #<-"}, want: "needs a prefix length"},
		{name: "network address", slots: map[string]string{"red": "link = \"red0\"\naddress = \"192.168.1.0/24\" #<-"}, want: "network address"},
		{name: "broadcast address", slots: map[string]string{"red": "link = \"red0\"\naddress = \"192.168.1.255/24\" #<-"}, want: "broadcast address"},
		{name: "loopback address", slots: map[string]string{"red": "link = \"red0\"\naddress = \"127.0.0.2/8\" #<-"}, want: "not a unicast address"},
		{name: "two IPv4 addresses", slots: map[string]string{"red": "link = \"red0\"\naddress = [\"192.168.1.1/24\",\n \"192.168.3.1/24\"] #<-"}, want: "one address per family"},
		{name: "gateway outside black", slots: map[string]string{"black": "link = \"black0\"\naddress = \"203.0.113.1/24\"\ngateway = \"198.51.100.1\" #<-"}, want: "outside the port's network 203.0.113.0/24"},
		{name: "gateway is own address", slots: map[string]string{"black": "link = \"black0\"\naddress = \"203.0.113.1/24\"\ngateway = \"203.0.113.1\" #<-"}, want: "own address"},
		{name: "gateway without family", slots: map[string]string{"black": "link = \"black0\"\naddress = \"203.0.113.1/24\"\ngateway = \"2001:db8::1\" #<-"}, want: "has no IPv6 address"},
		{name: "mtu range", slots: map[string]string{"black": "link = \"black0\"\naddress = \"203.0.113.1/24\"\nmtu = 100 #<-"}, want: "out of range 576..9216"},
		{name: "IPv6 mtu", slots: map[string]string{"black": "link = \"black0\"\naddress = [\"203.0.113.1/24\", \"2001:db8::1/64\"]\nmtu = 1000 #<-"}, want: "out of range 1280..9216"},
		{name: "shared link", slots: map[string]string{"black": "link = \"red0\" #<-\naddress = \"203.0.113.1/24\""}, want: "cannot share link"},
		{name: "overlapping ports", slots: map[string]string{"black": "link = \"black0\"\naddress = \"192.168.1.2/16\" #<-"}, want: "overlaps the red network"},
		// [management]
		{name: "listen elsewhere", slots: map[string]string{"extra": "[management]\nlisten = \"10.0.0.1:8080\" #<-"}, want: "not one of the device's own addresses; use the red address 192.168.1.1"},
		{name: "listen on black", slots: map[string]string{"extra": "[management]\nlisten = \"203.0.113.1:8080\" #<-"}, want: "carries only IKE and ESP"},
		{name: "listen syntax", slots: map[string]string{"extra": "[management]\nlisten = \"192.168.1.1\" #<-"}, want: "is not ADDRESS:PORT"},
		{name: "listen port 0", slots: map[string]string{"extra": "[management]\nlisten = \"192.168.1.1:0\" #<-"}, want: "other than 0"},
		// [policy]
		{name: "policy default", slots: map[string]string{"extra": "[policy]\ndefault = \"drop\" #<-"}, want: `"drop" is not one of "discard" or "bypass"`},
		{name: "policy bypass warns", slots: map[string]string{"extra": "[policy]\ndefault = \"bypass\" #<-"}, want: "in clear", warn: true},
		{name: "bypass without remote", slots: map[string]string{"extra": "[policy]\nbypass = [\n{ local = \"192.168.1.0/24\" }, #<-\n]"}, want: "needs remote"},
		{name: "bypass second entry", slots: map[string]string{"extra": "[policy]\nbypass = [\n{ local = \"192.168.1.0/24\", remote = \"10.0.0.0/8\" },\n{ local = \"192.168.1.0/24\", remote = \"10.0.0.0/33\" }, #<-\n]"}, want: "policy.bypass[1].remote"},
		{name: "bypass array of tables", slots: map[string]string{"extra": "[[policy.bypass]]\nlocal = \"192.168.1.0/24\"\nremote = \"10.0.0.0/8\"\n[[policy.bypass]]\nlocal = \"192.168.1.0/24\"\nremote = \"10.0.0.0/8\"\nproto = \"bogus\" #<-"}, want: "unknown protocol"},
		{name: "bypass brackets", slots: map[string]string{"extra": "[policy]\nbypass = [{ local = \"192.168.1.0/24[tcp]\", remote = \"10.0.0.0/8\" }] #<-"}, want: "not in brackets"},
		{name: "bypass ports need proto", slots: map[string]string{"extra": "[policy]\nbypass = [{ local = \"192.168.1.0/24\", remote = \"10.0.0.0/8\", proto = \"icmp\", remote_port = 53 }] #<-"}, want: "ports need proto"},
		{name: "bypass families", slots: map[string]string{"extra": "[policy]\nbypass = [{ local = \"192.168.1.0/24\", remote = \"2001:db8::/32\" }] #<-"}, want: "different IP families"},
		{name: "bypass icmp on IPv6", slots: map[string]string{"extra": "[policy]\nbypass = [{ local = \"fd00::/64\", remote = \"2001:db8::/32\", proto = \"icmp\" }] #<-"}, want: "icmp does not go with IPv6"},
		{name: "bypass port range", slots: map[string]string{"extra": "[policy]\nbypass = [{ local = \"192.168.1.0/24\", remote = \"10.0.0.0/8\", proto = \"udp\", remote_port = \"60-50\" }] #<-"}, want: "runs backwards"},
		// [pools]
		{name: "pool without addrs", slots: map[string]string{"extra": "[pools.p] #<-\ndns = [\"10.9.0.1\"]"}, want: "needs addrs"},
		{name: "pool bad addrs", slots: map[string]string{"extra": "[pools.p]\naddrs = \"10.9.0.1/24\" #<-"}, want: "host bits set"},
		{name: "pool overlap", slots: map[string]string{"extra": "[pools.p]\naddrs = \"10.9.0.0/24\"\n[pools.q]\naddrs = \"10.9.0.100-10.9.1.5\" #<-"}, want: "overlaps pool p"},
		{name: "pool nbns", slots: map[string]string{"extra": "[pools.p]\naddrs = \"10.9.0.0/24\"\nnbns = [\"10.9.0.1\"] #<-"}, want: "not supported by bitw: NetBIOS"},
		{name: "pool reference", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\npools = [\"clients\"] #<-\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: `no pool "clients"`},
		// [secrets]
		{name: "eap secret", slots: map[string]string{"extra": "[secrets.eap-carol] #<-\nsecret = \"x\""}, want: "EAP is not supported"},
		{name: "secret prefix", slots: map[string]string{"extra": "[secrets.gw-c] #<-\nsecret = \"x\""}, want: "must start with the secret's type"},
		{name: "secret missing", slots: map[string]string{"secret": "id = \"gw-b.example\""}, want: "needs secret", line: 21},
		{name: "secret hex", slots: map[string]string{"secret": "id = \"gw-b.example\"\nsecret = \"0xzz\" #<-"}, want: "not hex"},
		{name: "secret empty", slots: map[string]string{"secret": "id = \"gw-b.example\"\nsecret = \"\" #<-"}, want: "is empty"},
		{name: "secret short warns", slots: map[string]string{"secret": "id = \"gw-b.example\"\nsecret = \"abc\" #<-"}, want: "guessed offline", warn: true},
		{name: "secret bad id", slots: map[string]string{"secret": "id = [\"gw-b.example\", \"*.example\"] #<-\nsecret = \"0123456789abcdef0123\""}, want: "wildcards are not supported"},
		{name: "key file missing", slots: map[string]string{"extra": "[secrets.private-x]\nfile = \"nope.key\" #<-"}, want: "no such file"},
		{name: "key not a key", slots: map[string]string{"extra": "[secrets.private-x]\nfile = \"garbage.pem\" #<-"}, want: "garbage.pem"},
		{name: "key wrong passphrase", slots: map[string]string{"extra": "[secrets.private-x]\nfile = \"ec-aes256-sha256.pem\" #<-\nsecret = \"guess\""}, want: "wrong passphrase"},
		{name: "rsa section with EC key", slots: map[string]string{"extra": "[secrets.rsa-x]\nfile = \"gw-a.key\" #<-"}, want: "holds an ECDSA key, but the section name says RSA"},
		{name: "weak RSA", slots: map[string]string{"extra": "[secrets.rsa-x]\nfile = \"rsa1024-pkcs1.pem\" #<-"}, want: "too weak"},
		{name: "legacy PEM encryption", slots: map[string]string{"extra": "[secrets.ecdsa-x]\nfile = \"ec-legacy-pem.pem\" #<-\nsecret = \"bitw test passphrase\""}, want: "openssl pkcs8 -topk8"},
		// [connections]
		{name: "connection name", slots: map[string]string{"extra": "[connections.\"site c\"] #<-\nremote_addrs = [\"203.0.113.3\"]"}, want: `connection name "site c"`},
		{name: "IKEv1", slots: map[string]string{"conn": baseConn("version = 1 #<-")}, want: "IKEv2 only"},
		{name: "local_addrs", slots: map[string]string{"conn": baseConn("local_addrs = [\"192.168.1.1\"] #<-")}, want: "is not the black port's address"},
		{name: "remote DNS name", slots: map[string]string{"conn": "remote_addrs = [\"gw-b.example.com\"] #<-\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "resolves no DNS names"},
		{name: "remote unreachable", slots: map[string]string{"conn": "remote_addrs = [\"198.51.100.7\"] #<-\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "outside the black network and [interfaces.black] has no gateway"},
		{name: "remote on red", slots: map[string]string{"conn": "remote_addrs = [\n\"192.168.1.7\"] #<-\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "behind its red port"},
		{name: "remote any mixed", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\", \"%any\"] #<-\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "cannot be combined"},
		{name: "port range", slots: map[string]string{"conn": baseConn("remote_port = 70000 #<-")}, want: "out of range 1..65535"},
		{name: "proposal keyword", slots: map[string]string{"conn": baseConn("proposals = [\"aes256gcm16-prfsha384-x25519\",\n  \"aes128-sha257-x25519\"] #<-")}, want: `proposals[1]: unknown algorithm keyword "sha257"`},
		{name: "proposal legacy", slots: map[string]string{"conn": baseConn("proposals = [\"aes128-sha256-modp1024\"] #<-")}, want: "MODP_1024 is legacy; set allow_legacy"},
		{name: "proposal incomplete", slots: map[string]string{"conn": baseConn("proposals = [\"aes128gcm16-x25519\"] #<-")}, want: "needs a PRF"},
		{name: "proposal list as string", slots: map[string]string{"conn": baseConn("proposals = \"aes128gcm16-prfsha256-x25519, aes128-sha256-x25519\" #<-")}, want: "one value per array element"},
		{name: "mobike", slots: map[string]string{"conn": baseConn("mobike = true #<-")}, want: "MOBIKE (RFC 4555) is not supported"},
		{name: "duration unit", slots: map[string]string{"conn": baseConn("dpd_delay = \"10 s\" #<-")}, want: "is not a time"},
		{name: "duration range", slots: map[string]string{"conn": baseConn("dpd_delay = \"2d\" #<-")}, want: "2d is out of range 0s..1d"},
		{name: "dpd_timeout range", slots: map[string]string{"conn": baseConn("dpd_timeout = 1 #<-")}, want: "1s is out of range 5s..1h"},
		{name: "duration type", slots: map[string]string{"conn": baseConn("dpd_delay = 1.5 #<-")}, want: "not a float"},
		{name: "fragmentation force", slots: map[string]string{"conn": baseConn("fragmentation = \"force\" #<-")}, want: "IKEv1 only"},
		{name: "childless", slots: map[string]string{"conn": baseConn("childless = \"prefer\" #<-")}, want: `"prefer" is not one of "allow", "force" or "never"`},
		{name: "send_cert", slots: map[string]string{"conn": baseConn("send_cert = \"yes\" #<-")}, want: "is not one of"},
		{name: "unique", slots: map[string]string{"conn": baseConn("unique = \"always\" #<-")}, want: "is not one of"},
		{name: "keyingtries", slots: map[string]string{"conn": baseConn("keyingtries = -1 #<-")}, want: "out of range"},
		{name: "reauth", slots: map[string]string{"conn": baseConn("reauth_time = \"1h\" #<-")}, want: "reauthentication is not supported"},
		{name: "rand_time", slots: map[string]string{"conn": baseConn("rekey_time = \"1h\"\nrand_time = \"2h\" #<-")}, want: "must be shorter than rekey_time"},
		{name: "aggressive", slots: map[string]string{"conn": baseConn("aggressive = true #<-")}, want: "Aggressive Mode is IKEv1's"},
		{name: "conn typo", slots: map[string]string{"conn": baseConn("dpd_dealy = \"10s\" #<-")}, want: `(did you mean "dpd_delay"?)`},
		{name: "second round", slots: map[string]string{"conn": baseConn("local-2 = { auth = \"psk\" } #<-")}, want: "one authentication round"},
		{name: "no local", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "needs a local section", line: 12},
		{name: "auth eap", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"eap-tls\" } #<-"}, want: "EAP and XAuth are not supported"},
		{name: "auth constraints", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"rsa-2048\", cacerts = [\"ca.pem\"] } #<-"}, want: "write pubkey"},
		{name: "local id any", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"%any\" } #<-\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "concrete identity"},
		{name: "bad DN", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"C=CH, XX=y\" } #<-\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: `unknown attribute "XX"`},
		{name: "psk without remote id", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\" } #<-"}, want: "needs the peer's id"},
		{name: "psk no matching secret", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-c.example\" } #<-"}, want: `no [secrets.ike-*] section has id = "gw-c.example"`},
		{name: "psk ambiguous", slots: map[string]string{"extra": "[secrets.ike-c]\nid = \"gw-b.example\"\nsecret = \"another key, just as long\"", "conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" } #<-"}, want: "both match this connection's identities with different keys"},
		{name: "psk with certs", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\", certs = [\"gw-a.pem\"] } #<-\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "psk authentication uses no certificates"},
		{name: "pubkey without cert", slots: pubkeyConn("{ auth = \"pubkey\" } #<-", "{ auth = \"pubkey\", cacerts = [\"ca.pem\"] }"), want: "needs certs"},
		{name: "cert without key", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"gw-b.pem\"] } #<-", "{ auth = \"pubkey\", cacerts = [\"ca.pem\"] }"), want: "no private-, rsa- or ecdsa- secret holds the private key"},
		{name: "id not in cert", slots: pubkeyConn("{ auth = \"pubkey\", id = \"gw-x.example\", certs = [\"gw-a.pem\"] } #<-", "{ auth = \"pubkey\", cacerts = [\"ca.pem\"] }"), want: "neither the subject nor a subjectAltName"},
		{name: "cert missing", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"nope.pem\"] } #<-", "{ auth = \"pubkey\", cacerts = [\"ca.pem\"] }"), want: "cannot read the certificate"},
		{name: "cert garbage", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"garbage.pem\"] } #<-", "{ auth = \"pubkey\", cacerts = [\"ca.pem\"] }"), want: "not an X.509 certificate"},
		{name: "nothing to trust", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"gw-a.pem\"] }", "{ auth = \"pubkey\" } #<-"), want: "needs something to trust"},
		{name: "cacert not CA", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"gw-a.pem\"] }", "{ auth = \"pubkey\", cacerts = [\"gw-b.pem\"] } #<-"), want: "is not a CA certificate"},
		{name: "revocation strict", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"gw-a.pem\"] }", "{ auth = \"pubkey\", cacerts = [\"ca.pem\"], revocation = \"strict\" } #<-"), want: "only relaxed"},
		{name: "expired cert warns", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"gw-a.pem\"] }", "{ auth = \"pubkey\", certs = [\"old.pem\"] } #<-"), want: "old.pem expired", warn: true},
		{name: "null remote warns", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"null\" } #<-", "secret": "secret = \"0123456789abcdef0123\""}, want: "accepts any peer", warn: true},
		{name: "no children warns", slots: map[string]string{"child": "omit", "conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "no children", line: 12, warn: true},
		{name: "vips", slots: map[string]string{"conn": baseConn("vips = [\"0.0.0.0/0\"] #<-")}, want: "0.0.0.0 or :: asks for any address"},
		{name: "local_addrs any mixed", slots: map[string]string{"conn": baseConn("local_addrs = [\"%any\", #<-\n \"203.0.113.1\"]")}, want: "cannot be combined"},
		{name: "null with id", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"null\", id = \"gw-a.example\" } #<-\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "sends ID_NULL"},
		{name: "psk remote any", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"%any\" } #<-"}, want: "needs the peer's id"},
		{name: "cert section", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\", cacert1 = { file = \"ca.pem\" } } #<-"}, want: "give certificate files as a list"},
		{name: "raw public keys", slots: pubkeyConn("{ auth = \"pubkey\", certs = [\"gw-a.pem\"] }", "{ auth = \"pubkey\", pubkeys = [\"gw-b.pub\"] } #<-"), want: "pubkeys: not supported by bitw: bitw's IKE has no raw public key authentication (RFC 7670)"},
		{name: "local raw public key", slots: pubkeyConn("{ auth = \"pubkey\", pubkeys = [\"gw-a.pub\"] } #<-", "{ auth = \"pubkey\", cacerts = [\"ca.pem\"] }"), want: "pubkeys: not supported by bitw"},
		{name: "ipv4 identity prefix", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"ipv4:203.0.113.1\" } #<-\nremote = { auth = \"psk\", id = \"gw-b.example\" }"}, want: "plain address"},
		{name: "child name", slots: map[string]string{"extra": "[connections.site-b.children.\"a/b\"] #<-\nlocal_ts = [\"192.168.1.0/24\"]"}, want: `child name "a/b"`},
		{name: "pool name", slots: map[string]string{"extra": "[pools.\"x y\"] #<-\naddrs = \"10.9.0.0/24\""}, want: `pool name "x y"`},
		{name: "pool dns", slots: map[string]string{"extra": "[pools.p]\naddrs = \"10.9.0.0/24\"\ndns = [\"10.9.0.1\", \"dns.example\"] #<-"}, want: "pools.p.dns[1]"},
		{name: "pool subnet", slots: map[string]string{"extra": "[pools.p]\naddrs = \"10.9.0.0/24\"\nsubnet = [\"10.0.0.1/8\"] #<-"}, want: "is not a subnet"},
		{name: "connection not a table", slots: map[string]string{"extra": "[connections]\nsite-c = 1 #<-"}, want: "want a table, not an integer"},
		{name: "secret id type", slots: map[string]string{"secret": "id = 7 #<-\nsecret = \"0123456789abcdef0123\""}, want: "want an array of strings"},
		{name: "secret base64", slots: map[string]string{"secret": "id = \"gw-b.example\"\nsecret = \"0s!!!\" #<-"}, want: "not base64"},
		// children
		{name: "selector syntax", slots: map[string]string{"child": "local_ts = [\"192.168.1.0/24\", \"10.0.0.0/8[tcp/80\"] #<-\nremote_ts = [\"192.168.2.0/24\"]"}, want: "local_ts[1]"},
		{name: "selector service name", slots: map[string]string{"child": "local_ts = [\"192.168.1.0/24[tcp/https]\"] #<-\nremote_ts = [\"192.168.2.0/24\"]"}, want: "no services database"},
		{name: "selector icmp on IPv6", slots: map[string]string{"child": "local_ts = [\"192.168.1.0/24\", \"fd00::/64\"]\nremote_ts = [\"192.168.2.0/24\", \"fd01::/64[icmp]\"] #<-"}, want: "IPv6 uses ipv6-icmp"},
		{name: "selector families", slots: map[string]string{"child": "local_ts = [\"192.168.1.0/24\"]\nremote_ts = [\"fd01::/64\"] #<-"}, want: "local_ts covers IPv4 only but remote_ts covers IPv6 only"},
		{name: "empty selectors", slots: map[string]string{"child": "local_ts = [] #<-\nremote_ts = [\"192.168.2.0/24\"]"}, want: "the list is empty"},
		{name: "empty address list", slots: map[string]string{"black": "link = \"black0\"\naddress = [] #<-"}, want: "the list is empty"},
		{name: "ah allowed", slots: map[string]string{"device": "name = \"gw-a\"\nallow_integrity_only = true #<-", "child": baseChild("ah_proposals = [\"sha256-x25519\"]")}, want: "AH and NULL encryption can be negotiated", warn: true},
		{name: "ah default", slots: map[string]string{"device": "name = \"gw-a\"\nallow_integrity_only = true", "child": baseChild("ah_proposals = [\"default\"] #<-")}, want: "no default AH proposals"},
		{name: "esp and ah", slots: map[string]string{"child": baseChild("esp_proposals = [\"aes128gcm16\"]\nah_proposals = [\"sha256\"] #<-")}, want: "not both"},
		{name: "ah needs allow_integrity_only", slots: map[string]string{"child": baseChild("ah_proposals = [\"sha256\"] #<-")}, want: "set allow_integrity_only"},
		{name: "esp null", slots: map[string]string{"child": baseChild("esp_proposals = [\"null-sha256\"] #<-")}, want: "set allow_integrity_only"},
		{name: "esp 3des", slots: map[string]string{"child": baseChild("esp_proposals = [\"3des-sha256\"] #<-")}, want: "ENCR_3DES is legacy"},
		{name: "esp prf", slots: map[string]string{"child": baseChild("esp_proposals = [\"aes128gcm16-prfsha256\"] #<-")}, want: "only IKE proposals take"},
		{name: "mode beet", slots: map[string]string{"child": baseChild("mode = \"beet\" #<-")}, want: "beet mode is not supported"},
		{name: "mode pass", slots: map[string]string{"child": baseChild("mode = \"pass\" #<-")}, want: "[policy] bypass"},
		{name: "start_action", slots: map[string]string{"child": baseChild("start_action = \"route\" #<-")}, want: `"route" is not one of "none", "trap" or "start"`},
		{name: "combined actions", slots: map[string]string{"child": baseChild("start_action = \"trap|start\" #<-")}, want: "choose one action"},
		{name: "dpd_action words", slots: map[string]string{"child": baseChild("dpd_action = \"start\" #<-")}, want: `not one of "clear", "trap" or "restart"`},
		{name: "trap with dynamic", slots: map[string]string{"child": "local_ts = [\"192.168.1.0/24\"]\nstart_action = \"trap\" #<-"}, want: "needs concrete remote selectors"},
		{name: "start without peer address", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.0/24\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }", "child": baseChild("start_action = \"start\" #<-")}, want: "needs a peer address"},
		{name: "life before rekey", slots: map[string]string{"child": baseChild("rekey_time = \"1h\"\nlife_time = \"30m\" #<-")}, want: "must be longer than rekey_time"},
		{name: "rand_time", slots: map[string]string{"child": baseChild("rekey_time = \"1h\"\nlife_time = \"3h\" #<-")}, want: "rand_time (2h) must be smaller than rekey_time (1h)"},
		{name: "life_bytes", slots: map[string]string{"child": baseChild("rekey_bytes = \"1g\"\nlife_bytes = \"512m\" #<-")}, want: "life_bytes (536870912) must be longer than rekey_bytes (1073741824)"},
		{name: "size syntax", slots: map[string]string{"child": baseChild("rekey_bytes = \"1t\" #<-")}, want: "is not a size"},
		{name: "packets", slots: map[string]string{"child": baseChild("rekey_packets = \"1k\" #<-")}, want: "want an integer"},
		{name: "replay window", slots: map[string]string{"child": baseChild("replay_window = 32 #<-")}, want: "32 is too small"},
		{name: "tfc padding", slots: map[string]string{"child": baseChild("tfc_padding = \"max\" #<-")}, want: `give "mtu", or 0 for none`},
		{name: "tfc minimum", slots: map[string]string{"child": baseChild("tfc_padding = 1000 #<-")}, want: `not supported by bitw: padding to a minimum size; bitw pads every packet to the path MTU, write tfc_padding = "mtu"`},
		{name: "tfc transport", slots: map[string]string{"child": "mode = \"transport\"\ntfc_padding = \"mtu\" #<-"}, want: "TFC padding needs ESP in tunnel mode"},
		{name: "tfc AH", slots: map[string]string{"device": "name = \"gw-a\"\nallow_integrity_only = true", "child": baseChild("ah_proposals = [\"sha256\"]\ntfc_padding = \"mtu\" #<-")}, want: "TFC padding needs ESP in tunnel mode"},
		{name: "copy_dscp", slots: map[string]string{"child": baseChild("copy_dscp = \"both\" #<-")}, want: `"both" is not one of "out", "no", "in" or "yes"`},
		{name: "copy_dscp in", slots: map[string]string{"child": baseChild("copy_dscp = \"in\" #<-")}, want: `"in": not supported by bitw: the black network's DSCP marks are never copied onto red traffic`},
		{name: "copy_dscp yes", slots: map[string]string{"child": baseChild("copy_dscp = true #<-")}, want: `"yes": not supported by bitw`},
		{name: "updown", slots: map[string]string{"child": baseChild("updown = \"/usr/lib/ipsec/_updown\" #<-")}, want: "bitw runs no scripts"},
		{name: "child typo", slots: map[string]string{"child": baseChild("esp_proposal = [\"aes128gcm16\"] #<-")}, want: `(did you mean "esp_proposals"?)`},
		{name: "transport subnet", slots: map[string]string{"child": "mode = \"transport\"\nlocal_ts = [\"192.168.1.0/24\"] #<-"}, want: "in transport mode the local selector"},
		{name: "duplicate selectors", slots: map[string]string{"extra": "[connections.site-b.children.lan2]\nlocal_ts = [\"192.168.1.0/24\"] #<-\nremote_ts = [\"192.168.2.0/24\"]"}, want: "same selectors as site-b/lan"},
		{name: "tfc range", slots: map[string]string{"child": baseChild("tfc_padding = 70000 #<-")}, want: "out of range 0..65535"},
		{name: "inactivity", slots: map[string]string{"child": baseChild("inactivity = \"-1s\" #<-")}, want: "is not a time"},
		{name: "transport remote", slots: map[string]string{"child": "mode = \"transport\"\nremote_ts = [\"203.0.113.9\"] #<-"}, want: "in transport mode the remote selector"},
		{name: "vip family", slots: map[string]string{"conn": baseConn("vips = [\"::\"]"), "child": "remote_ts = [\"192.168.2.0/24\"] #<-"}, want: "local_ts covers IPv6 only but remote_ts covers IPv4 only"},
		{name: "trap on range peer", slots: map[string]string{"conn": "remote_addrs = [\"203.0.113.2-203.0.113.9\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }", "child": baseChild("close_action = \"trap\" #<-")}, want: "trap means initiating"},
		{name: "local_ts off red warns", slots: map[string]string{"child": "local_ts = [\"10.1.0.0/16\"] #<-\nremote_ts = [\"192.168.2.0/24\"]"}, want: "not on the red network", warn: true},
		{name: "swapped selectors warn", slots: map[string]string{"child": "local_ts = [\"192.168.2.0/24\", \"192.168.1.0/24\"]\nremote_ts = [\"192.168.1.0/25\"] #<-"}, want: "are local_ts and remote_ts swapped?", warn: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := build(tc.slots)
			want := tc.line
			if want == 0 {
				want = marked(src)
			}
			if want == 0 {
				t.Fatalf("no #<- marker and no line in the case")
			}
			cfg, err := loadIn(t, dir, src)
			var found []Diagnostic
			if tc.warn {
				if err != nil {
					t.Fatalf("want a warning, got errors:\n%v\n--- config:\n%s", err, numbered(src))
				}
				found = cfg.Warnings
			} else {
				var list Errors
				if !errors.As(err, &list) {
					t.Fatalf("want an error, got %v\n--- config:\n%s", err, numbered(src))
				}
				found = list
			}
			for _, d := range found {
				if strings.Contains(d.Msg, tc.want) {
					if d.Line != want {
						t.Errorf("%q reported at line %d, want line %d\n--- config:\n%s", d.Msg, d.Line, want, numbered(src))
					}
					if d.File != filepath.Join(dir, "bitw.toml") {
						t.Errorf("file %q", d.File)
					}
					return
				}
			}
			t.Errorf("no finding contains %q; got:\n%v\n--- config:\n%s", tc.want, Errors(found), numbered(src))
		})
	}
}

// baseConn is the base connection plus extra lines.
func baseConn(extra string) string {
	return "remote_addrs = [\"203.0.113.2\"]\n" + extra + "\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"psk\", id = \"gw-b.example\" }"
}

// baseChild is the base child plus extra lines.
func baseChild(extra string) string {
	return "local_ts = [\"192.168.1.0/24\"]\nremote_ts = [\"192.168.2.0/24\"]\n" + extra
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, l)
	}
	return b.String()
}

// TestBaseIsValid guards the table: the unmodified base must load cleanly.
func TestBaseIsValid(t *testing.T) {
	cfg, err := loadIn(t, t.TempDir(), build(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", Errors(cfg.Warnings))
	}
}

// TestAllErrorsReported checks that Load goes on after the first error and
// reports in file order.
func TestAllErrorsReported(t *testing.T) {
	src := build(map[string]string{
		"device": "name = \"gw-a\"\nlog_level = \"loud\"",
		"child":  baseChild("mode = \"beet\"\nreplay_window = 1"),
	})
	_, err := loadIn(t, t.TempDir(), src)
	var list Errors
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for i := 1; i < len(list); i++ {
		if list[i].Line < list[i-1].Line {
			t.Errorf("errors out of order: %v", list)
		}
	}
	line := regexp.MustCompile(`^.+/bitw\.toml:\d+: \S.*$`)
	for _, l := range strings.Split(err.Error(), "\n") {
		if !line.MatchString(l) {
			t.Errorf("%q is not FILE:LINE: why", l)
		}
	}
}

func TestUnreadable(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.toml"))
	if err == nil || !strings.Contains(err.Error(), "missing.toml:1: cannot read the configuration: no such file") {
		t.Errorf("got %v", err)
	}
	if _, err := Load("/dev/null"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/null: %v", err)
	}
}

// TestDefaults checks every default the base configuration leaves to bitw.
func TestDefaults(t *testing.T) {
	cfg, err := loadIn(t, t.TempDir(), build(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Device
	if d.Control != "/run/bitw/gw-a.sock" || d.LogLevel.String() != "INFO" || d.SaveKeys != "" || d.AllowLegacy || d.AllowIntegrityOnly || !d.MSSClamp || d.MSS != 0 {
		t.Errorf("device defaults: %+v", d)
	}
	if cfg.Policy.Default != Discard || len(cfg.Policy.Bypass) != 0 {
		t.Errorf("policy defaults: %+v", cfg.Policy)
	}
	if cfg.Red.MTU != 1500 || cfg.Black.MTU != 1500 || cfg.Red.Link != (Link{Name: "red0"}) {
		t.Errorf("interface defaults: %+v %+v", cfg.Red, cfg.Black)
	}
	if cfg.Management.Listen.IsValid() {
		t.Errorf("management on by default: %v", cfg.Management.Listen)
	}
	c := cfg.Connections[0]
	if c.Name != "site-b" || len(c.LocalAddrs) != 1 || c.LocalAddrs[0].String() != "203.0.113.1" ||
		c.LocalPort != 500 || c.RemotePort != 500 || c.Encap || c.DPDDelay != 0 || c.DPDTimeout != 30*time.Second ||
		c.Fragmentation != FragmentYes || c.Childless != ChildlessAllow || !c.SendCertReq || c.SendCert != SendCertIfAsked ||
		c.KeyingTries != 1 || c.Unique != UniqueNo || c.RekeyTime != 4*time.Hour || c.OverTime != 24*time.Minute || c.RandTime != 24*time.Minute {
		t.Errorf("connection defaults: %+v", c)
	}
	if h, ok := c.RemoteHost(); !ok || h.String() != "203.0.113.2" {
		t.Errorf("RemoteHost = %v, %v", h, ok)
	}
	var ike []string
	for _, p := range c.Proposals {
		ike = append(ike, p.String())
	}
	if got, want := strings.Join(ike, ","), "aes256gcm16-prfsha384-x25519-ecp384,aes128gcm16-prfsha256-x25519-ecp256,aes256-sha384-prfsha384-x25519-ecp384-modp3072"; got != want {
		t.Errorf("default IKE proposals %s, want %s", got, want)
	}
	if c.Local.Method != AuthPSK || c.Local.ID.String() != "gw-a.example" || c.Local.ID.Type != IDFQDN || c.Remote.ID.String() != "gw-b.example" {
		t.Errorf("auth: %+v %+v", c.Local, c.Remote)
	}
	if string(c.PSK) != "0123456789abcdef0123" {
		t.Errorf("PSK %q", c.PSK)
	}
	ch := c.Children[0]
	var esp []string
	for _, p := range ch.Proposals {
		esp = append(esp, p.String())
	}
	if got, want := strings.Join(esp, ","), "aes256gcm16-esn-noesn,aes128gcm16-esn-noesn,aes128-sha256-esn-noesn"; got != want {
		t.Errorf("default ESP proposals %s, want %s", got, want)
	}
	if ch.Name != "lan" || ch.Protocol.String() != "ESP" || ch.Mode != Tunnel || ch.StartAction != ActionNone || ch.DPDAction != ActionNone || ch.CloseAction != ActionNone ||
		ch.RekeyTime != time.Hour || ch.LifeTime != 66*time.Minute || ch.RandTime != 6*time.Minute ||
		ch.RekeyBytes != 0 || ch.LifeBytes != 0 || ch.RekeyPackets != 0 || ch.LifePackets != 0 ||
		ch.ReplayWindow != 1024 || ch.TFCPadding != 0 || !ch.CopyDF || !ch.CopyECN || ch.CopyDSCP != CopyDSCPOut || ch.Inactivity != 0 {
		t.Errorf("child defaults: %+v", ch)
	}
	if ch.LocalTS[0].String() != "192.168.1.0/24" || ch.RemoteTS[0].String() != "192.168.2.0/24" {
		t.Errorf("selectors %v %v", ch.LocalTS, ch.RemoteTS)
	}
	if cfg.Connection("site-b") != c || cfg.Connection("x") != nil || c.Child("lan") != ch || c.Child("x") != nil {
		t.Error("Child lookup")
	}
}

// TestValues checks that set values arrive typed and converted.
func TestValues(t *testing.T) {
	dir := t.TempDir()
	testCreds(t, dir)
	src := build(map[string]string{
		"device": "name = \"gw-a\"\ncontrol = \"run/gw-a.sock\"\nlog_level = \"debug\"\nmss_clamp = 1360\nallow_legacy = true",
		"red":    "link = \"tap:red0\"\naddress = [\"192.168.1.1/24\", \"fd00:1::1/64\"]\ngateway = \"192.168.1.254\"\nmtu = 9000",
		"black":  "link = \"enet1\"\naddress = \"203.0.113.1/24\"\ngateway = \"203.0.113.254\"",
		"conn": "remote_addrs = [\"198.51.100.0/24\", \"198.51.100.9\"]\nlocal_port = 4500\nremote_port = 4500\nencap = true\ndpd_delay = 30\n" +
			"dpd_timeout = \"2m\"\nfragmentation = false\nchildless = \"force\"\nsend_certreq = false\nsend_cert = \"always\"\nkeyingtries = 0\n" +
			"unique = \"replace\"\nrekey_time = \"1d\"\nover_time = \"1h\"\nrand_time = \"30m\"\npools = [\"clients\"]\nvips = [\"0.0.0.0\"]\n" +
			"proposals = [\"aes128gcm16-aes256gcm16-prfsha256-ecp256-ke1_mlkem768\", \"default\"]\n" +
			"local = { auth = \"pubkey\", certs = [\"gw-a.pem\"] }\nremote = { auth = \"pubkey\", id = \"C=CH, O=bitw, CN=gw-b.example\", cacerts = [\"ca.pem\"], revocation = \"relaxed\" }",
		"child": "local_ts = [\"192.168.1.0/24\", \"fd00:1::/64[ipv6-icmp/128]\", \"10.0.0.1-10.0.0.9[udp/1000-2000]\"]\n" +
			"remote_ts = [\"dynamic[tcp/22]\", \"fd00:2::/64\"]\nesp_proposals = [\"aes256gcm16-x25519-esn\", \"default\"]\nmode = \"tunnel\"\n" +
			"start_action = \"start\"\ndpd_action = \"restart\"\nclose_action = \"start\"\nrekey_time = \"30m\"\nlife_time = \"40m\"\n" +
			"rekey_bytes = \"1g\"\nrekey_packets = 1000000\nreplay_window = 4096\ntfc_padding = \"mtu\"\ncopy_df = false\ncopy_ecn = false\n" +
			"copy_dscp = false\ninactivity = \"5m\"",
		"secret": "omit",
		"extra": "[management]\nlisten = \"[fd00:1::1]:443\"\n[policy]\ndefault = \"discard\"\n" +
			"bypass = [{ local = \"192.168.1.0/24\", remote = \"198.51.100.0/24\", proto = \"udp\", remote_port = 53 }]\n" +
			"[pools.clients]\naddrs = \"10.9.0.0/24\"\ndns = [\"10.9.0.1\"]\nsubnet = [\"192.168.1.0/24\"]\n" +
			"[secrets.ecdsa-a]\nfile = \"gw-a.key\"\n[secrets.private-enc]\nfile = \"ec-aes256-sha256.pem\"\nsecret = \"bitw test passphrase\"",
	})
	cfg, err := loadIn(t, dir, src)
	if err != nil {
		t.Fatalf("%v\n%s", err, numbered(src))
	}
	d := cfg.Device
	if d.Control != filepath.Join(dir, "run/gw-a.sock") || d.LogLevel.String() != "DEBUG" || d.MSS != 1360 || !d.MSSClamp || !d.ProposalPolicy().AllowLegacy {
		t.Errorf("device: %+v", d)
	}
	if cfg.Red.Link.String() != "tap:red0" || cfg.Red.Link.Kind != LinkTAP || len(cfg.Red.Addresses) != 2 || cfg.Red.MTU != 9000 {
		t.Errorf("red: %+v", cfg.Red)
	}
	if g, ok := cfg.Black.Gateway(true); !ok || g.String() != "203.0.113.254" {
		t.Errorf("black gateway %v", g)
	}
	if cfg.Management.Listen.String() != "[fd00:1::1]:443" {
		t.Errorf("listen %v", cfg.Management.Listen)
	}
	if b := cfg.Policy.Bypass; len(b) != 1 || b[0].Local.String() != "192.168.1.0/24[udp]" || b[0].Remote.String() != "198.51.100.0/24[udp/53]" {
		t.Errorf("bypass %v", b)
	}
	pool := cfg.Pools[0]
	if pool.First.String() != "10.9.0.1" || pool.Last.String() != "10.9.0.254" || pool.DNS[0].String() != "10.9.0.1" || pool.Subnets[0].String() != "192.168.1.0/24" {
		t.Errorf("pool %+v", pool)
	}
	c := cfg.Connections[0]
	if h, _ := c.RemoteHost(); h.String() != "198.51.100.9" || len(c.RemoteAddrs) != 2 || c.RemoteAddrs[0].String() != "198.51.100.0/24" {
		t.Errorf("remote addrs %v", c.RemoteAddrs)
	}
	if c.LocalPort != 4500 || !c.Encap || c.DPDDelay != 30*time.Second || c.DPDTimeout != 2*time.Minute || c.Fragmentation != FragmentNo ||
		c.Childless != ChildlessForce || c.SendCertReq || c.SendCert != SendCertAlways || c.KeyingTries != 0 || c.Unique != UniqueReplace ||
		c.RekeyTime != 24*time.Hour || c.OverTime != time.Hour || c.RandTime != 30*time.Minute || c.Pools[0] != pool || c.VIPs[0].String() != "0.0.0.0" {
		t.Errorf("connection: %+v", c)
	}
	if len(c.Proposals) != 4 || c.Proposals[0].String() != "aes128gcm16-aes256gcm16-prfsha256-ecp256-ke1_mlkem768" {
		t.Errorf("proposals %v", c.Proposals)
	}
	if c.Local.Method != AuthPubkey || c.Local.Key == nil || !sameKey(c.Local.Key.Public(), c.Local.Certs[0].PublicKey) || c.Local.ID.Type != IDDN {
		t.Errorf("local auth %+v", c.Local)
	}
	if !certHasIdentity(c.Local.Certs[0], c.Local.ID) || c.Local.ID.String() != "CN=gw-a.example,O=bitw,C=CH" {
		t.Errorf("local id %s", c.Local.ID)
	}
	if c.Remote.ID.Type != IDDN || len(c.Remote.CACerts) != 1 || c.PSK != nil {
		t.Errorf("remote auth %+v", c.Remote)
	}
	if len(cfg.Secrets.Private) != 2 || cfg.Secrets.Private[1].Name != "private-enc" {
		t.Errorf("private keys %v", cfg.Secrets.Private)
	}
	ch := c.Children[0]
	var lts, rts []string
	for _, ts := range ch.LocalTS {
		lts = append(lts, ts.String())
	}
	for _, ts := range ch.RemoteTS {
		rts = append(rts, ts.String())
	}
	if strings.Join(lts, " ") != "192.168.1.0/24 fd00:1::/64[ipv6-icmp/128] 10.0.0.1-10.0.0.9[udp/1000-2000]" || strings.Join(rts, " ") != "dynamic[tcp/22] fd00:2::/64" {
		t.Errorf("selectors %v %v", lts, rts)
	}
	if ch.StartAction != ActionStart || ch.DPDAction != ActionStart || ch.CloseAction != ActionStart ||
		ch.RekeyTime != 30*time.Minute || ch.LifeTime != 40*time.Minute || ch.RandTime != 10*time.Minute ||
		ch.RekeyBytes != 1<<30 || ch.LifeBytes != 1<<30+1<<30/10 || ch.RekeyPackets != 1000000 || ch.LifePackets != 1100000 || ch.RandPackets != 100000 ||
		ch.ReplayWindow != 4096 || ch.TFCPadding != TFCPaddingMTU || ch.CopyDF || ch.CopyECN || ch.CopyDSCP != CopyDSCPNo || ch.Inactivity != 5*time.Minute {
		t.Errorf("child %+v", ch)
	}
	if len(ch.Proposals) != 4 || ch.Proposals[0].String() != "aes256gcm16-x25519-esn" {
		t.Errorf("esp proposals %v", ch.Proposals)
	}
}

// TestPSKByDistinguishedName selects a pre-shared key by DN identities,
// which hold commas, in both swanctl spellings of the secret's ids.
func TestPSKByDistinguishedName(t *testing.T) {
	for _, ids := range []string{
		"id = \"C=CH, O=bitw, CN=gw-b\"",
		"id-a = \"C=CH, O=bitw, CN=gw-a\"\nid-b = \"C=CH,O=bitw,CN=gw-b\"",
		"id = [\"C=CH, O=bitw, CN=gw-a\", \"/C=CH/O=bitw/CN=gw-b\"]",
	} {
		src := build(map[string]string{
			"conn":   "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"C=CH, O=bitw, CN=gw-a\" }\nremote = { auth = \"psk\", id = \"C=CH, O=bitw, CN=gw-b\" }",
			"secret": ids + "\nsecret = \"0123456789abcdef0123\"",
			"extra":  "[secrets.ike-other]\nid = \"C=CH, O=bitw, CN=gw-c\"\nsecret = \"some other key of enough length\"",
		})
		cfg, err := loadIn(t, t.TempDir(), src)
		if err != nil {
			t.Errorf("%s: %v", ids, err)
			continue
		}
		if got := string(cfg.Connections[0].PSK); got != "0123456789abcdef0123" {
			t.Errorf("%s: PSK %q", ids, got)
		}
	}
}

// TestDesignExample loads the configuration example of design.md's
// contract, which tests outside the project copy.
func TestDesignExample(t *testing.T) {
	dir := t.TempDir()
	testCreds(t, dir)
	if err := os.Rename(filepath.Join(dir, "gw-a.key"), filepath.Join(dir, "gw-a.key.pem")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "gw-a.key.pem"))
	if err := os.WriteFile(filepath.Join(dir, "gw-a.key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	src := `[device]
name = "gw-a"
control = "/run/bitw/gw-a.sock"   # host runtime: control socket; the default is /run/bitw/<name>.sock
log_level = "info"                # debug | info | warn | error
save_keys = "/var/lib/bitw/keys"  # optional, debugging only: writes Wireshark's esp_sa and ikev2_decryption_table here
allow_legacy = false              # true admits 3DES, MODP1024 and SHA-1 as negotiated transforms
allow_integrity_only = false      # true admits AH and NULL encryption

[policy]
default = "discard"               # discard (default) | bypass: red traffic that no child's selectors cover
bypass = [{ local = "192.168.1.0/24", remote = "198.51.100.0/24", proto = "icmp" }]   # optional cleartext exceptions

[interfaces.red]
link = "red0"                     # host: Linux interface (AF_PACKET) or "tap:NAME"; firmware: board port name
address = "192.168.1.1/24"
[interfaces.black]
link = "black0"
address = "203.0.113.1/24"
gateway = "203.0.113.254"         # optional

[management]
listen = "192.168.1.1:8080"       # optional HTTP: /status (JSON below), /metrics (Prometheus text)

[connections.site-b]
remote_addrs = ["203.0.113.2"]
proposals = ["aes256gcm16-prfsha384-ecp384", "aes128-sha256-x25519"]
dpd_delay = "10s"
rekey_time = "4h"
local = { auth = "psk", id = "gw-a.example" }
remote = { auth = "psk", id = "gw-b.example" }
# pubkey: local = { auth = "pubkey", id = "...", certs = ["gw-a.pem"] }, remote = { auth = "pubkey", cacerts = ["ca.pem"] }

[connections.site-b.children.lan]
local_ts = ["192.168.1.0/24"]
remote_ts = ["192.168.2.0/24"]
esp_proposals = ["aes128gcm16-x25519"]
mode = "tunnel"                   # tunnel | transport
start_action = "start"            # none | trap | start
dpd_action = "restart"
rekey_time = "1h"

[pools.clients]                   # address pool for configuration payloads (swanctl's pools)
addrs = "10.9.0.0/24"
dns = ["10.9.0.1"]
# a connection that serves it: pools = ["clients"]

[secrets.ike-b]                   # swanctl's convention: the section prefix gives the type
id = "gw-b.example"
secret = "a long pre-shared key"

[secrets.private-a]
file = "gw-a.key"                 # the private key file itself (PEM); paths are relative to the config file
# secret = "..."                  # passphrase, if the key file is encrypted
`
	cfg, err := loadIn(t, dir, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Msg, "save_keys") {
		t.Errorf("warnings: %v", Errors(cfg.Warnings))
	}
	if c := cfg.Connections[0]; string(c.PSK) != "a long pre-shared key" || c.Proposals[1].String() != "aes128-sha256-prfsha256-x25519" {
		t.Errorf("connection %+v", c)
	}
}

// TestExamples checks the shipped example configurations: both load
// without warnings and mirror each other.
func TestExamples(t *testing.T) {
	a, err := Load("../../examples/site-a.toml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("../../examples/site-b.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []*Config{a, b} {
		if len(cfg.Warnings) != 0 {
			t.Errorf("%s: %v", cfg.File, Errors(cfg.Warnings))
		}
	}
	ca, cb := a.Connections[0], b.Connections[0]
	if string(ca.PSK) != string(cb.PSK) || !ca.Local.ID.Equal(cb.Remote.ID) || !ca.Remote.ID.Equal(cb.Local.ID) {
		t.Error("the sites' identities or keys do not match")
	}
	ha, _ := ca.RemoteHost()
	hb, _ := cb.RemoteHost()
	if !b.Black.Owns(ha) || !a.Black.Owns(hb) {
		t.Error("the sites do not point at each other")
	}
	if ca.Children[0].LocalTS[0] != cb.Children[0].RemoteTS[0] || ca.Children[0].RemoteTS[0] != cb.Children[0].LocalTS[0] {
		t.Error("the sites' selectors do not mirror")
	}
}

// TestStrongSwanExample checks that examples/strongswan/swanctl.conf, gw-b
// as strongSwan, says what examples/site-b.toml says.
func TestStrongSwanExample(t *testing.T) {
	data, err := os.ReadFile("../../examples/strongswan/swanctl.conf")
	if err != nil {
		t.Fatal(err)
	}
	// Flatten swanctl.conf's sections into dotted keys.
	conf := make(map[string]string)
	var section []string
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		switch {
		case strings.HasSuffix(line, "{"):
			section = append(section, strings.TrimSpace(strings.TrimSuffix(line, "{")))
		case line == "}":
			section = section[:len(section)-1]
		case strings.Contains(line, "="):
			k, v, _ := strings.Cut(line, "=")
			conf[strings.Join(append(section, strings.TrimSpace(k)), ".")] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	b, err := Load("../../examples/site-b.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := b.Connections[0]
	ch := c.Children[0]
	join := func(ps []string) string { return strings.Join(ps, ", ") }
	var ike, esp []string
	for _, p := range c.Proposals {
		ike = append(ike, p.String())
	}
	for _, p := range ch.Proposals {
		esp = append(esp, strings.TrimSuffix(p.String(), "-noesn"))
	}
	h, _ := c.RemoteHost()
	for key, want := range map[string]string{
		"connections.site-a.local_addrs":                c.LocalAddrs[0].String(),
		"connections.site-a.remote_addrs":               h.String(),
		"connections.site-a.proposals":                  join(ike),
		"connections.site-a.dpd_delay":                  formatDuration(c.DPDDelay),
		"connections.site-a.rekey_time":                 formatDuration(c.RekeyTime),
		"connections.site-a.local.auth":                 c.Local.Method.String(),
		"connections.site-a.local.id":                   c.Local.ID.String(),
		"connections.site-a.remote.auth":                c.Remote.Method.String(),
		"connections.site-a.remote.id":                  c.Remote.ID.String(),
		"connections.site-a.children.lan.local_ts":      ch.LocalTS[0].String(),
		"connections.site-a.children.lan.remote_ts":     ch.RemoteTS[0].String(),
		"connections.site-a.children.lan.esp_proposals": join(esp),
		"connections.site-a.children.lan.mode":          strings.ToLower(ch.Mode.String()),
		"connections.site-a.children.lan.rekey_time":    formatDuration(ch.RekeyTime),
		"connections.site-a.children.lan.dpd_action":    "restart",
		"secrets.ike-site-a.secret":                     string(c.PSK),
		"connections.site-a.mobike":                     "no",
		"connections.site-a.version":                    "2",
		"connections.site-a.children.lan.start_action":  "trap",
		"secrets.ike-site-a.id-a":                       c.Remote.ID.String(),
		"secrets.ike-site-a.id-b":                       c.Local.ID.String(),
	} {
		if got := conf[key]; got != want {
			t.Errorf("swanctl.conf %s = %q, site-b.toml says %q", key, got, want)
		}
	}
}
