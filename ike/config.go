package ike

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Config is everything a Manager negotiates with: the device policy,
// connections, address pools and tuning. Names and meanings follow
// swanctl.conf (and so firmware/config, which the composition root
// translates into this). Zero durations disable what they time, as in the
// configuration file; zero tuning values take the defaults below.
type Config struct {
	// Policy is the device's transform policy (allow_legacy,
	// allow_integrity_only). Every negotiated suite passes Suite.Check.
	Policy      proposal.Policy
	Connections []*Connection
	Pools       []*Pool

	// Retransmission of our requests (RFC 7296 §2.1): the n-th
	// retransmission waits RetransmitTimeout * RetransmitBase^n, capped
	// at RetransmitLimit; after RetransmitTries retransmissions the peer
	// is declared dead. strongSwan's defaults: 4 s, 1.8, 5 tries.
	RetransmitTimeout time.Duration
	RetransmitBase    float64
	RetransmitTries   int
	RetransmitLimit   time.Duration

	// CookieThreshold is the number of half-open IKE SAs (responder side,
	// IKE_AUTH not yet done) from which IKE_SA_INIT requests must carry a
	// valid COOKIE (RFC 7296 §2.6). 0 takes DefaultCookieThreshold; a
	// negative value demands cookies always.
	CookieThreshold int
	// HalfOpenLimit caps half-open IKE SAs; requests beyond it are
	// dropped and counted, cookie or not.
	HalfOpenLimit int
	// HalfOpenPerSource caps one source's share (an IPv4 address, an
	// IPv6 /64): at that many half-open SAs it must return a COOKIE
	// whatever CookieThreshold says, and once it holds that many made
	// with a valid COOKIE its requests are dropped and counted. Spoofed
	// requests can thus cost a victim a cookie round trip but not its IKE
	// SA. 0 takes DefaultHalfOpenPerSource; negative disables the cap.
	HalfOpenPerSource int
	// HalfOpenTimeout deletes an IKE SA whose initial exchanges have not
	// finished in time. It also bounds how long a responder waits for
	// the next IKE_FOLLOWUP_KE of a CREATE_CHILD_SA with additional key
	// exchanges (RFC 9370 §2.2.4).
	HalfOpenTimeout time.Duration
	// CookieSecretLifetime is how long one cookie secret is used before
	// a new one replaces it; cookies made with the previous secret are
	// still accepted for one more lifetime.
	CookieSecretLifetime time.Duration

	// IKEPort and NATTPort are the UDP ports of IKE and of IKE with
	// ESP in UDP (RFC 3948); defaults 500 and 4500.
	IKEPort, NATTPort uint16
	// KeepaliveInterval is how often a side behind a NAT sends NAT
	// keepalives (RFC 3948 §4); default 20 s.
	KeepaliveInterval time.Duration
	// FragmentMTU is the path MTU RFC 7383 fragmentation assumes;
	// default 1280 (strongSwan's fragment_size).
	FragmentMTU int
	// ReassemblyTimeout drops incomplete fragmented messages.
	ReassemblyTimeout time.Duration
	// QueueLen bounds Run's queues of packets and data-plane events.
	QueueLen int
	// UnprotectedReplyRate is how many unprotected error replies
	// (INVALID_IKE_SPI, INVALID_MAJOR_VERSION; RFC 7296 §1.5) go out per
	// second at most, all sources together, and how many may go out at
	// once; the rest are counted. 0 takes DefaultUnprotectedReplyRate;
	// negative sends none.
	UnprotectedReplyRate int
}

// Tuning defaults.
const (
	DefaultRetransmitTimeout    = 4 * time.Second
	DefaultRetransmitBase       = 1.8
	DefaultRetransmitTries      = 5
	DefaultRetransmitLimit      = 0 // no cap
	DefaultCookieThreshold      = 30
	DefaultHalfOpenLimit        = 5000
	DefaultHalfOpenPerSource    = 64
	DefaultUnprotectedReplyRate = 10
	DefaultHalfOpenTimeout      = 30 * time.Second
	DefaultCookieSecretLifetime = 120 * time.Second
	DefaultKeepaliveInterval    = 20 * time.Second
	DefaultFragmentMTU          = 1280
	DefaultReassemblyTimeout    = 30 * time.Second
	DefaultQueueLen             = 4096
)

// Well-known ports (RFC 7296 §2, RFC 3948 §2).
const (
	PortIKE  = 500
	PortNATT = 4500
)

// Connection is one IKE SA configuration (swanctl's connections.NAME).
type Connection struct {
	Name string
	// LocalAddrs are our IKE addresses; empty accepts any. An initiator
	// uses the first of the remote address's family.
	LocalAddrs []netip.Addr
	// RemoteAddrs are the peer addresses accepted; empty is %any. An
	// initiator connects to the first single address.
	RemoteAddrs []AddrRange
	// LocalPort and RemotePort default to IKEPort.
	LocalPort, RemotePort uint16
	// Proposals are the IKE proposals in order of preference.
	Proposals []proposal.Proposal
	// VIPs are virtual IPs to request in a CP payload (0.0.0.0 or ::
	// for any address of that family).
	VIPs []netip.Addr
	// Pools name the address pools this connection serves (responder).
	Pools []string
	// ForceEncap fakes NAT detection so that ESP goes in UDP (swanctl's
	// encap).
	ForceEncap bool
	// DPDDelay is the idle time after which a liveness check is sent;
	// 0 disables it. DPDTimeout, when set, bounds how long any request
	// is retransmitted before the peer is declared dead.
	DPDDelay, DPDTimeout time.Duration
	Fragmentation        Fragmentation
	Childless            Childless
	SendCertReq          bool
	SendCert             SendCert
	// KeyingTries is how many times an initiation is attempted; 0 retries
	// forever.
	KeyingTries int
	Unique      Unique
	// RekeyTime starts an IKE SA rekey (less a random part up to
	// RandTime); OverTime after RekeyTime the SA is deleted if the
	// rekey has not succeeded. 0 disables rekeying.
	RekeyTime, OverTime, RandTime time.Duration
	Local, Remote                 AuthConfig
	Children                      []*Child
}

// AuthMethod is how one side authenticates.
type AuthMethod uint8

const (
	AuthPSK    AuthMethod = iota + 1 // pre-shared key (RFC 7296 §2.15)
	AuthPubkey                       // signature with a private key and certificate
	AuthNull                         // no authentication (RFC 7619); refused unless configured
)

func (a AuthMethod) String() string {
	switch a {
	case AuthPSK:
		return "psk"
	case AuthPubkey:
		return "pubkey"
	case AuthNull:
		return "null"
	}
	return fmt.Sprintf("auth(%d)", uint8(a))
}

// AuthConfig is a connection's local or remote section.
type AuthConfig struct {
	Method AuthMethod
	// ID is the identity we send (local) or require (remote; the zero
	// Identity is %any). A local pubkey ID defaults to the certificate's
	// subject.
	ID Identity
	// Certs: local, our certificate and any intermediates, end entity
	// first; remote, peer end-entity certificates accepted as they are
	// (pinned), without a CA.
	Certs []*x509.Certificate
	// CACerts are the trust anchors for the peer's chain (remote only).
	CACerts []*x509.Certificate
	// AllowSHA1 admits RSA PKCS#1 v1.5 with SHA-1 (AUTH method 1) and
	// SHA-1 in RFC 7427 signatures; off by default (RFC 8247).
	AllowSHA1 bool
	// RSAPKCS1v15 signs RFC 7427 payloads with RSASSA-PKCS1-v1_5
	// instead of RSASSA-PSS, for peers without PSS.
	RSAPKCS1v15 bool
	// Classic signs with the key's own AUTH method (RSA: method 1, which
	// needs AllowSHA1; ECDSA: methods 9-11 by curve) even when the peer
	// announced RFC 7427 hashes, for peers without RFC 7427.
	Classic bool
}

// Child is one Child SA configuration (swanctl's children.NAME).
type Child struct {
	Name string
	// LocalTS and RemoteTS default to one dynamic selector each.
	LocalTS, RemoteTS []TrafficSelector
	// Protocol is ESP (default) or AH.
	Protocol proposal.Protocol
	// Proposals are the ESP or AH proposals in order of preference. Key
	// exchange methods in them ask for PFS on CREATE_CHILD_SA; the Child
	// SA of IKE_AUTH never has one (RFC 7296 §1.2).
	Proposals   []proposal.Proposal
	Mode        Mode
	StartAction Action
	DPDAction   Action
	CloseAction Action
	// Rekeying starts at Rekey minus a random part up to Rand; the SA
	// dies at Life. Zero disables a limit.
	RekeyTime, LifeTime, RandTime          time.Duration
	RekeyBytes, LifeBytes, RandBytes       uint64
	RekeyPackets, LifePackets, RandPackets uint64
	ReplayWindow                           uint32
	// TFCPadding is the minimum ESP payload size (0 off, -1 pad to the
	// MTU); it is dropped when the peer sends ESP_TFC_PADDING_NOT_SUPPORTED.
	TFCPadding      int
	CopyDF, CopyECN bool
	CopyDSCP        CopyDSCP
	// Inactivity closes the Child SA once it has carried no traffic in
	// either direction for this long (swanctl's inactivity); 0 is off.
	// A rekeyed SA inherits the activity of the SA it replaces, so a
	// rekey does not count as traffic. The data plane's use times come
	// from an Installer that implements SAUsage.
	Inactivity time.Duration
}

// Pool is an address pool served in configuration payloads (swanctl's
// pools.NAME; RFC 7296 §3.15).
type Pool struct {
	Name        string
	First, Last netip.Addr     // allocatable addresses, inclusive
	DNS         []netip.Addr   // INTERNAL_IP4_DNS / INTERNAL_IP6_DNS
	Subnets     []netip.Prefix // INTERNAL_IP4_SUBNET / INTERNAL_IP6_SUBNET
}

// Mode is a Child SA's IPsec mode.
type Mode uint8

const (
	ModeTunnel Mode = iota + 1
	ModeTransport
)

// String prints the mode as the status JSON does.
func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "TUNNEL"
	case ModeTransport:
		return "TRANSPORT"
	}
	return fmt.Sprintf("MODE(%d)", uint8(m))
}

// Action is a child's start_action, dpd_action or close_action.
type Action uint8

const (
	ActionNone  Action = iota // clear
	ActionTrap                // install a trap policy: traffic triggers negotiation
	ActionStart               // initiate (again) at once ("restart")
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionTrap:
		return "trap"
	case ActionStart:
		return "start"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Fragmentation is connections.*.fragmentation (RFC 7383).
type Fragmentation uint8

const (
	FragmentYes    Fragmentation = iota // announce support and fragment when the peer supports it
	FragmentAccept                      // announce support, never fragment our own messages
	FragmentNo                          // do not announce support
)

// Childless is connections.*.childless (RFC 6023).
type Childless uint8

const (
	ChildlessAllow Childless = iota // accept childless IKE SAs; initiate one when no child is asked for
	ChildlessForce                  // always initiate childless, create children with CREATE_CHILD_SA
	ChildlessNever                  // refuse IKE_AUTH without a Child SA
)

// SendCert is connections.*.send_cert.
type SendCert uint8

const (
	SendCertIfAsked SendCert = iota // when the peer sent a CERTREQ
	SendCertAlways
	SendCertNever
)

// Unique is connections.*.unique, the uniqueness policy for IKE SAs of
// one remote identity.
type Unique uint8

const (
	UniqueNo      Unique = iota // replace older SAs on INITIAL_CONTACT
	UniqueNever                 // never enforce, not even on INITIAL_CONTACT
	UniqueReplace               // a new IKE SA replaces the old one
	UniqueKeep                  // refuse a new IKE SA while one exists
)

// CopyDSCP says which way tunnel mode copies DSCP.
type CopyDSCP uint8

const (
	CopyDSCPOut CopyDSCP = iota // inner to outer (default)
	CopyDSCPIn                  // outer to inner
	CopyDSCPYes                 // both ways
	CopyDSCPNo                  // never
)

// AddrRange is an inclusive range of addresses of one family.
type AddrRange struct {
	From, To netip.Addr
}

// RangeOf is the range covering exactly the prefix p.
func RangeOf(p netip.Prefix) AddrRange {
	p = p.Masked()
	return AddrRange{From: p.Addr(), To: lastAddr(p)}
}

// Contains reports whether a lies in the range.
func (r AddrRange) Contains(a netip.Addr) bool {
	a = a.Unmap()
	return a.BitLen() == r.From.BitLen() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// Single reports whether the range is one address.
func (r AddrRange) Single() bool { return r.From == r.To }

func (r AddrRange) String() string {
	if r.Single() {
		return r.From.String()
	}
	if p, ok := rangePrefix(r.From, r.To); ok {
		return p.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// validate checks the configuration and fills in the defaults.
func (c *Config) validate() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RetransmitTimeout, DefaultRetransmitTimeout)
	def(&c.HalfOpenTimeout, DefaultHalfOpenTimeout)
	def(&c.CookieSecretLifetime, DefaultCookieSecretLifetime)
	def(&c.KeepaliveInterval, DefaultKeepaliveInterval)
	def(&c.ReassemblyTimeout, DefaultReassemblyTimeout)
	if c.RetransmitBase == 0 {
		c.RetransmitBase = DefaultRetransmitBase
	}
	if c.RetransmitTries == 0 {
		c.RetransmitTries = DefaultRetransmitTries
	}
	if c.CookieThreshold == 0 {
		c.CookieThreshold = DefaultCookieThreshold
	}
	if c.HalfOpenLimit == 0 {
		c.HalfOpenLimit = DefaultHalfOpenLimit
	}
	if c.HalfOpenPerSource == 0 {
		c.HalfOpenPerSource = DefaultHalfOpenPerSource
	}
	if c.UnprotectedReplyRate == 0 {
		c.UnprotectedReplyRate = DefaultUnprotectedReplyRate
	}
	if c.IKEPort == 0 {
		c.IKEPort = PortIKE
	}
	if c.NATTPort == 0 {
		c.NATTPort = PortNATT
	}
	if c.FragmentMTU == 0 {
		c.FragmentMTU = DefaultFragmentMTU
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.RetransmitBase < 1 || c.RetransmitTries < 0 {
		return errors.New("ike: retransmit base below 1 or negative tries")
	}
	pools := map[string]bool{}
	for _, p := range c.Pools {
		if p.Name == "" || pools[p.Name] {
			return fmt.Errorf("ike: pool %q: empty or duplicate name", p.Name)
		}
		if !p.First.IsValid() || p.First.BitLen() != p.Last.BitLen() || p.Last.Less(p.First) {
			return fmt.Errorf("ike: pool %q: invalid range", p.Name)
		}
		pools[p.Name] = true
	}
	names := map[string]bool{}
	for _, conn := range c.Connections {
		if conn.Name == "" || names[conn.Name] {
			return fmt.Errorf("ike: connection %q: empty or duplicate name", conn.Name)
		}
		names[conn.Name] = true
		if err := conn.validate(c, pools); err != nil {
			return fmt.Errorf("ike: connection %s: %w", conn.Name, err)
		}
	}
	return nil
}

func (conn *Connection) validate(c *Config, pools map[string]bool) error {
	if conn.LocalPort == 0 {
		conn.LocalPort = c.IKEPort
	}
	if conn.RemotePort == 0 {
		conn.RemotePort = c.IKEPort
	}
	if len(conn.Proposals) == 0 {
		return errors.New("no IKE proposals")
	}
	for _, p := range conn.Proposals {
		if p.Protocol != proposal.ProtoIKE {
			return fmt.Errorf("%s proposal among IKE proposals", p.Protocol)
		}
		if err := p.Check(c.Policy); err != nil {
			return err
		}
		if len(p.KE) == 0 {
			return errors.New("an IKE proposal without a key exchange method")
		}
		for _, ke := range p.KE {
			if info, ok := ke.Info(); ok && info.KEM {
				return fmt.Errorf("%s is a KEM: only as an additional key exchange (ke1_...)", ke)
			}
		}
	}
	for _, name := range conn.Pools {
		if !pools[name] {
			return fmt.Errorf("unknown pool %q", name)
		}
	}
	for _, a := range []*AuthConfig{&conn.Local, &conn.Remote} {
		if a.Method == 0 {
			return errors.New("local or remote auth method unset")
		}
	}
	if conn.Local.Method == AuthPubkey && len(conn.Local.Certs) == 0 {
		return errors.New("local pubkey authentication without a certificate")
	}
	if conn.Remote.Method == AuthPubkey && len(conn.Remote.CACerts) == 0 && len(conn.Remote.Certs) == 0 {
		return errors.New("remote pubkey authentication without CA or pinned certificates")
	}
	if conn.Local.ID.IsAny() {
		if conn.Local.Method == AuthPubkey {
			conn.Local.ID = Identity{Type: IDDN, Data: conn.Local.Certs[0].RawSubject}
		} else if conn.Local.Method == AuthNull {
			conn.Local.ID = Identity{Type: IDNull}
		}
	}
	if conn.OverTime == 0 && conn.RekeyTime > 0 {
		conn.OverTime = conn.RekeyTime / 10
	}
	children := map[string]bool{}
	for _, ch := range conn.Children {
		if ch.Name == "" || children[ch.Name] {
			return fmt.Errorf("child %q: empty or duplicate name", ch.Name)
		}
		children[ch.Name] = true
		if err := ch.validate(c); err != nil {
			return fmt.Errorf("child %s: %w", ch.Name, err)
		}
	}
	return nil
}

func (ch *Child) validate(c *Config) error {
	if ch.Protocol == 0 {
		ch.Protocol = proposal.ProtoESP
	}
	if ch.Mode == 0 {
		ch.Mode = ModeTunnel
	}
	if len(ch.LocalTS) == 0 {
		ch.LocalTS = []TrafficSelector{{Dynamic: true}}
	}
	if len(ch.RemoteTS) == 0 {
		ch.RemoteTS = []TrafficSelector{{Dynamic: true}}
	}
	for _, list := range [][]TrafficSelector{ch.LocalTS, ch.RemoteTS} {
		for i := range list {
			ts := &list[i]
			if ts.Proto == 0 || (ts.FromPort == 0 && ts.ToPort == 0) {
				// Any protocol means any port (RFC 7296 §3.13.1).
				ts.FromPort, ts.ToPort = 0, 65535
			}
			if !ts.Dynamic && !ts.valid() {
				return fmt.Errorf("invalid traffic selector %v", ts.TS)
			}
		}
	}
	if len(ch.Proposals) == 0 {
		return errors.New("no proposals")
	}
	for _, p := range ch.Proposals {
		if p.Protocol != ch.Protocol {
			return fmt.Errorf("%s proposal for a %s child", p.Protocol, ch.Protocol)
		}
		if err := p.Check(c.Policy); err != nil {
			return err
		}
	}
	if ch.LifeTime > 0 && ch.RekeyTime > ch.LifeTime {
		return errors.New("rekey_time beyond life_time")
	}
	if ch.Inactivity < 0 {
		return errors.New("negative inactivity")
	}
	return nil
}

// remoteHost is the address an initiator connects to.
func (conn *Connection) remoteHost() (netip.Addr, bool) {
	for _, r := range conn.RemoteAddrs {
		if r.Single() {
			return r.From, true
		}
	}
	return netip.Addr{}, false
}

// localFor picks our address for a peer of a's family.
func (conn *Connection) localFor(a netip.Addr) (netip.Addr, bool) {
	for _, l := range conn.LocalAddrs {
		if l.Is4() == a.Is4() {
			return l, true
		}
	}
	return netip.Addr{}, false
}

// matchesAddrs reports whether an IKE_SA_INIT between local and remote
// may use this connection.
func (conn *Connection) matchesAddrs(local, remote netip.Addr) bool {
	ok := len(conn.LocalAddrs) == 0
	for _, l := range conn.LocalAddrs {
		if l == local.Unmap() {
			ok = true
		}
	}
	if !ok {
		return false
	}
	if len(conn.RemoteAddrs) == 0 {
		return true
	}
	for _, r := range conn.RemoteAddrs {
		if r.Contains(remote) {
			return true
		}
	}
	return false
}
