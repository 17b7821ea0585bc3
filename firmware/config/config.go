package config

import (
	"crypto"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Config is a loaded and validated configuration. Every default is filled
// in, every reference resolved and every file read, so the composition
// root only copies values out.
type Config struct {
	File string // the path given to Load
	Dir  string // absolute directory that relative paths in the file are resolved against

	Device      Device
	Policy      Policy
	Red, Black  Interface
	Management  Management
	Connections []*Connection // in file order
	Pools       []*Pool       // in file order
	Secrets     Secrets

	// Warnings are legal but risky settings (a debugging option left on, a
	// short pre-shared key); `bitw check` prints them and still succeeds.
	Warnings []Diagnostic
}

// Connection returns the connection of that name, or nil.
func (c *Config) Connection(name string) *Connection {
	for _, conn := range c.Connections {
		if conn.Name == name {
			return conn
		}
	}
	return nil
}

// Device is [device].
type Device struct {
	Name     string
	Control  string // absolute path of the control socket; default /run/bitw/<name>.sock
	LogLevel slog.Level
	// SaveKeys is the directory where Wireshark's esp_sa and
	// ikev2_decryption_table files are written, as an absolute path; ""
	// when off.
	SaveKeys           string
	AllowLegacy        bool
	AllowIntegrityOnly bool
	// MSSClamp rewrites the MSS option of TCP SYNs crossing the tunnel so
	// that segments fit the path after ESP overhead. MSS is a fixed value
	// to clamp to; 0 derives it from the MTU and the SA's overhead.
	MSSClamp bool
	MSS      uint16
}

// ProposalPolicy is the transform policy [device] sets, for
// proposal.Suite.Check and proposal.Proposal.Check.
func (d Device) ProposalPolicy() proposal.Policy {
	return proposal.Policy{AllowLegacy: d.AllowLegacy, AllowIntegrityOnly: d.AllowIntegrityOnly}
}

// PolicyAction is what happens to red traffic that no child covers.
type PolicyAction uint8

const (
	Discard PolicyAction = iota // drop and count (the default)
	Bypass                      // forward in clear
)

func (a PolicyAction) String() string {
	if a == Bypass {
		return "bypass"
	}
	return "discard"
}

// Policy is [policy].
type Policy struct {
	Default PolicyAction
	// Bypass rules let matching red traffic cross in clear; they take
	// precedence over children. Local is the red side, Remote the far side;
	// a rule matches both directions.
	Bypass []BypassRule
}

// BypassRule is one [policy] bypass entry: selectors for the red (local)
// and far (remote) ends. Neither selector is dynamic.
type BypassRule struct {
	Local, Remote TrafficSelector
}

// LinkKind says how a port is attached.
type LinkKind uint8

const (
	LinkDevice LinkKind = iota // a Linux interface (AF_PACKET) or a board port name
	LinkTAP                    // "tap:NAME": a TAP device bitw opens
)

// Link is an interface's link setting.
type Link struct {
	Kind LinkKind
	Name string // interface, board port or TAP name, without "tap:"
}

func (l Link) String() string {
	if l.Kind == LinkTAP {
		return "tap:" + l.Name
	}
	return l.Name
}

// Interface is [interfaces.red] or [interfaces.black].
type Interface struct {
	Link Link
	// Addresses are the port's own addresses with their on-link prefix
	// lengths, at most one IPv4 and one IPv6.
	Addresses []netip.Prefix
	// Gateways are the next hops for destinations off the link, at most one
	// per family, each inside an address's prefix.
	Gateways []netip.Addr
	MTU      int
}

// Address returns the port's IPv4 (is4) or IPv6 address.
func (i Interface) Address(is4 bool) (netip.Prefix, bool) {
	for _, p := range i.Addresses {
		if p.Addr().Is4() == is4 {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Gateway returns the port's IPv4 (is4) or IPv6 gateway.
func (i Interface) Gateway(is4 bool) (netip.Addr, bool) {
	for _, g := range i.Gateways {
		if g.Is4() == is4 {
			return g, true
		}
	}
	return netip.Addr{}, false
}

// Owns reports whether a is one of the port's own addresses.
func (i Interface) Owns(a netip.Addr) bool {
	for _, p := range i.Addresses {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// OnLink reports whether a lies in one of the port's prefixes.
func (i Interface) OnLink(a netip.Addr) bool {
	for _, p := range i.Addresses {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Management is [management]. Listen is invalid (zero) when the HTTP
// server is off.
type Management struct {
	Listen netip.AddrPort
}

// Fragmentation is connections.*.fragmentation (RFC 7383).
type Fragmentation uint8

const (
	FragmentYes    Fragmentation = iota // announce support and fragment when the peer supports it
	FragmentAccept                      // announce support, never fragment our own messages
	FragmentNo                          // do not announce support (fragments are still accepted)
)

func (f Fragmentation) String() string { return [...]string{"yes", "accept", "no"}[f] }

// Childless is connections.*.childless (RFC 6023).
type Childless uint8

const (
	ChildlessAllow Childless = iota
	ChildlessForce
	ChildlessNever
)

func (c Childless) String() string { return [...]string{"allow", "force", "never"}[c] }

// SendCert is connections.*.send_cert.
type SendCert uint8

const (
	SendCertIfAsked SendCert = iota
	SendCertAlways
	SendCertNever
)

func (s SendCert) String() string { return [...]string{"ifasked", "always", "never"}[s] }

// Unique is connections.*.unique, swanctl's uniqueness policy.
type Unique uint8

const (
	UniqueNo      Unique = iota // replace on INITIAL_CONTACT
	UniqueNever                 // never enforce, not even on INITIAL_CONTACT
	UniqueReplace               // a new IKE SA for the same remote identity replaces the old
	UniqueKeep                  // refuse a new IKE SA while one exists
)

func (u Unique) String() string { return [...]string{"no", "never", "replace", "keep"}[u] }

// Connection is [connections.NAME]: an IKE SA's configuration.
type Connection struct {
	Name string
	// LocalAddrs are bitw's own addresses for IKE (black port addresses);
	// an initiator uses the first of the remote address's family.
	LocalAddrs []netip.Addr
	// RemoteAddrs are the peer addresses accepted; nil means %any. An
	// initiator connects to the first single address (see RemoteHost).
	RemoteAddrs []AddressRange
	LocalPort   uint16
	RemotePort  uint16
	// Proposals are the IKE proposals in order of preference.
	Proposals []proposal.Proposal
	// VIPs are the virtual IPs to request (0.0.0.0 or :: for any).
	VIPs []netip.Addr
	// Encap forces UDP encapsulation by faking NAT detection (RFC 7296 §2.23).
	Encap         bool
	DPDDelay      time.Duration // 0: no active liveness checks
	DPDTimeout    time.Duration // how long an unanswered IKE request is retried before the peer is declared dead
	Fragmentation Fragmentation
	Childless     Childless
	SendCertReq   bool
	SendCert      SendCert
	KeyingTries   int // initiation attempts; 0 retries forever
	Unique        Unique
	RekeyTime     time.Duration // IKE SA rekeying; 0 disables it
	OverTime      time.Duration // hard lifetime beyond RekeyTime
	RandTime      time.Duration // jitter subtracted from RekeyTime
	Pools         []*Pool       // address pools this connection serves
	Local, Remote Auth
	// PSK is the pre-shared key the connection uses when either side
	// authenticates with psk, chosen from [secrets] by the identities.
	PSK      []byte
	Children []*Child // in file order
}

// RemoteHost returns the address an initiator connects to: the first
// remote_addrs entry that is a single address.
func (c *Connection) RemoteHost() (netip.Addr, bool) {
	for _, r := range c.RemoteAddrs {
		if r.Single() {
			return r.From, true
		}
	}
	return netip.Addr{}, false
}

// Child returns the connection's child of that name, or nil.
func (c *Connection) Child(name string) *Child {
	for _, ch := range c.Children {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}

// AuthMethod is how one side authenticates.
type AuthMethod uint8

const (
	AuthPubkey AuthMethod = iota // signature with a private key (RFC 7427)
	AuthPSK                      // pre-shared key (RFC 7296 §2.15)
	AuthNull                     // no authentication (RFC 7619)
)

func (m AuthMethod) String() string { return [...]string{"pubkey", "psk", "null"}[m] }

// Auth is a connection's local or remote section.
type Auth struct {
	Method AuthMethod
	// ID is the identity to send (local) or to expect (remote; %any
	// accepts every identity).
	ID Identity
	// Certs: local, our certificate candidates (bitw sends the first);
	// remote, the peer certificates accepted as they are.
	Certs []*x509.Certificate
	// CACerts are the trust anchors for the peer's certificate (remote only).
	CACerts []*x509.Certificate
	// Key signs our AUTH payload (local pubkey authentication): the private
	// key from [secrets] that matches Certs[0].
	Key crypto.Signer
}

// Mode is a child's IPsec mode.
type Mode uint8

const (
	Tunnel Mode = iota
	Transport
)

func (m Mode) String() string {
	if m == Transport {
		return "TRANSPORT"
	}
	return "TUNNEL"
}

// Action is a child's start_action, close_action or dpd_action. For
// dpd_action, swanctl's "clear" is ActionNone and "restart" ActionStart.
type Action uint8

const (
	ActionNone  Action = iota
	ActionTrap         // install a trap policy: traffic triggers negotiation
	ActionStart        // initiate (again) at once
)

func (a Action) String() string { return [...]string{"none", "trap", "start"}[a] }

// CopyDSCP says whether tunnel mode copies the inner DSCP field into the
// outer header. The other direction, swanctl's "in" and "yes", is refused:
// the black network's marks never reach red traffic.
type CopyDSCP uint8

const (
	CopyDSCPOut CopyDSCP = iota // inner to outer (the default)
	CopyDSCPNo                  // never: the outer header carries DSCP 0
)

func (c CopyDSCP) String() string { return [...]string{"out", "no"}[c] }

// TFCPaddingMTU is Child.TFCPadding for "mtu": pad every packet to the
// path MTU. It is the only padding bitw does.
const TFCPaddingMTU = -1

// Child is [connections.NAME.children.NAME]: a Child SA's configuration.
type Child struct {
	Name string
	// LocalTS and RemoteTS are the selectors, several per side; the
	// default is one "dynamic" selector.
	LocalTS, RemoteTS []TrafficSelector
	// Protocol is ESP, or AH when ah_proposals is set.
	Protocol proposal.Protocol
	// Proposals are the ESP or AH proposals, in order of preference.
	Proposals   []proposal.Proposal
	Mode        Mode
	StartAction Action
	DPDAction   Action
	CloseAction Action
	// Lifetimes. Rekeying starts at Rekey minus a random value up to Rand;
	// the SA dies at Life. Zero disables a limit.
	RekeyTime, LifeTime, RandTime          time.Duration
	RekeyBytes, LifeBytes, RandBytes       uint64
	RekeyPackets, LifePackets, RandPackets uint64
	ReplayWindow                           uint32 // packets; anti-replay is always on
	TFCPadding                             int    // 0 off, or TFCPaddingMTU
	CopyDF, CopyECN                        bool
	CopyDSCP                               CopyDSCP
	Inactivity                             time.Duration // close after this long without traffic; 0 off
}

// Pool is [pools.NAME]: addresses and attributes handed out in
// configuration payloads (RFC 7296 §3.15).
type Pool struct {
	Name string
	// Addrs is the range given; the allocatable addresses are First..Last
	// (a CIDR pool leaves out its network address and, for IPv4, its
	// broadcast address).
	Addrs       AddressRange
	First, Last netip.Addr
	DNS         []netip.Addr   // INTERNAL_IP4_DNS / INTERNAL_IP6_DNS
	Subnets     []netip.Prefix // INTERNAL_IP4_SUBNET / INTERNAL_IP6_SUBNET
}

// Secrets is [secrets].
type Secrets struct {
	IKE     []*SharedKey  // ike-* sections, in file order
	Private []*PrivateKey // private-*, rsa-* and ecdsa-* sections, in file order
}

// SharedKey is an ike-* section: a pre-shared key and the identities it
// belongs to (none: every identity).
type SharedKey struct {
	Name   string
	IDs    []Identity
	Secret []byte
}

// PrivateKey is a private-*, rsa-* or ecdsa-* section: a private key read
// from File.
type PrivateKey struct {
	Name string
	File string // absolute path
	Key  crypto.Signer
}
