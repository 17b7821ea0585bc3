// Package status is the snapshot of a running bitw that `bitw status`,
// the control socket and the management server's GET /status report
// (design.md, Contracts: Status JSON), and its text rendering in the style
// of `swanctl --list-sas`.
//
// The contract fields keep their names and JSON types; the extras (IKE
// SPIs, ports, identities, NAT detection, ages, per-SA drops, the device's
// drop counters) only add keys. The runtime fills a Status from the IKE
// manager and the data plane through the Source interface; this package
// depends on neither, so the CLI and the management server can render a
// snapshot without the engine linked in.
package status

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
)

// Source gives a consistent snapshot of the device. The runtime implements
// it; the control socket and the management server call it on every
// request, from their own goroutines.
type Source interface {
	Snapshot() Status
}

// SourceFunc adapts a function to Source.
type SourceFunc func() Status

// Snapshot calls f.
func (f SourceFunc) Snapshot() Status { return f() }

// IKE SA states (swanctl's vocabulary, design.md).
const (
	IKEConnecting  = "CONNECTING"
	IKEEstablished = "ESTABLISHED"
	IKERekeying    = "REKEYING"
	IKEDeleting    = "DELETING"
)

// Child SA states (swanctl's vocabulary, design.md).
const (
	ChildInstalling = "INSTALLING"
	ChildInstalled  = "INSTALLED"
	ChildRekeying   = "REKEYING"
	ChildRekeyed    = "REKEYED"
	ChildDeleting   = "DELETING"
)

// IKEStates and ChildStates list every state in lifecycle order, for
// gauges that must show zero counts too.
var (
	IKEStates   = [...]string{IKEConnecting, IKEEstablished, IKERekeying, IKEDeleting}
	ChildStates = [...]string{ChildInstalling, ChildInstalled, ChildRekeying, ChildRekeyed, ChildDeleting}
)

// Modes and protocols of a Child SA as the JSON spells them.
const (
	ModeTunnel    = "TUNNEL"
	ModeTransport = "TRANSPORT"
	ProtocolESP   = "ESP"
	ProtocolAH    = "AH"
)

// Drop sources: the data plane (ipsec) and the frame path (netstack).
const (
	SourceIPsec    = "ipsec"
	SourceNetstack = "netstack"
)

// Status is the whole snapshot.
type Status struct {
	Device string  `json:"device"`
	IKESAs []IKESA `json:"ike_sas"`

	// Version is the running binary's version.
	Version string `json:"version,omitempty"`
	// UptimeSecs is the time since the runtime started.
	UptimeSecs int64 `json:"uptime_secs"`
	// Drops counts the packets dropped by source (SourceIPsec,
	// SourceNetstack) and reason (the metric label); reasons that never
	// occurred are left out.
	Drops map[string]map[string]uint64 `json:"drops,omitempty"`
}

// IKESA is one IKE SA. Local and Remote are the outer addresses.
type IKESA struct {
	Conn      string     `json:"conn"`
	State     string     `json:"state"`
	Local     netip.Addr `json:"local"`
	Remote    netip.Addr `json:"remote"`
	Initiator bool       `json:"initiator"`
	// Proposal is the negotiated suite in the config's keyword syntax
	// ("aes256gcm16-prfsha384-ecp384"); empty while CONNECTING.
	Proposal string    `json:"proposal"`
	ChildSAs []ChildSA `json:"child_sas"`

	SPIi       IKESPI `json:"spi_i"`
	SPIr       IKESPI `json:"spi_r"`
	LocalPort  uint16 `json:"local_port"`
	RemotePort uint16 `json:"remote_port"`
	LocalID    string `json:"local_id,omitempty"`
	RemoteID   string `json:"remote_id,omitempty"`
	// NATLocal and NATRemote report NAT detection (RFC 7296 §2.23): our
	// address, or the peer's, is translated. A forced encap shows as
	// NATLocal, as strongSwan fakes it.
	NATLocal  bool `json:"nat_local"`
	NATRemote bool `json:"nat_remote"`
	// EstablishedSecs is the age of the SA since IKE_AUTH (or its rekey)
	// completed; 0 while CONNECTING. RekeySecs is the time left until
	// rekeying (or a rekey retry) starts, ExpireSecs until the SA is
	// deleted for want of a rekey (rekey_time + over_time); 0 when none
	// is scheduled.
	EstablishedSecs int64 `json:"established_secs"`
	RekeySecs       int64 `json:"rekey_secs,omitempty"`
	ExpireSecs      int64 `json:"expire_secs,omitempty"`
}

// ChildSA is one Child SA: the inbound and outbound SA of one negotiation.
type ChildSA struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Mode     string `json:"mode"`
	Protocol string `json:"protocol"`
	// Encap reports ESP in UDP (RFC 3948).
	Encap  bool `json:"encap"`
	SPIIn  SPI  `json:"spi_in"`
	SPIOut SPI  `json:"spi_out"`
	// Proposal is the suite in keyword syntax ("aes128gcm16-esn").
	Proposal string `json:"proposal"`
	// LocalTS and RemoteTS are the negotiated selectors in the config's
	// syntax ("192.168.1.0/24", "10.0.0.1[tcp/80]").
	LocalTS  []string `json:"local_ts"`
	RemoteTS []string `json:"remote_ts"`
	// Live counters of what the SAs carried: inner bytes and packets.
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`

	// ReqID ties the SA pair to its policies in the data plane.
	ReqID uint32 `json:"reqid"`
	// Inbound drops attributed to this SA: replayed sequence numbers,
	// failed integrity checks, everything else.
	ReplayDrops uint64 `json:"replay_drops"`
	AuthDrops   uint64 `json:"auth_drops"`
	OtherDrops  uint64 `json:"other_drops"`
	// SeqOut is the last outbound sequence number sent.
	SeqOut uint64 `json:"seq_out"`
	// InstalledSecs is the age of the SA; RekeySecs and ExpireSecs the
	// time left until rekeying (or a rekey retry) starts and until the
	// hard lifetime (life_time), 0 when none is scheduled.
	InstalledSecs int64 `json:"installed_secs"`
	RekeySecs     int64 `json:"rekey_secs,omitempty"`
	ExpireSecs    int64 `json:"expire_secs,omitempty"`
}

// MarshalJSON writes empty lists as [] rather than null, so consumers can
// iterate over ike_sas without a null check.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	p := plain(s)
	if p.IKESAs == nil {
		p.IKESAs = []IKESA{}
	}
	return json.Marshal(p)
}

// MarshalJSON writes an empty child_sas as [].
func (sa IKESA) MarshalJSON() ([]byte, error) {
	type plain IKESA
	p := plain(sa)
	if p.ChildSAs == nil {
		p.ChildSAs = []ChildSA{}
	}
	return json.Marshal(p)
}

// MarshalJSON writes empty selector lists as [].
func (c ChildSA) MarshalJSON() ([]byte, error) {
	type plain ChildSA
	p := plain(c)
	if p.LocalTS == nil {
		p.LocalTS = []string{}
	}
	if p.RemoteTS == nil {
		p.RemoteTS = []string{}
	}
	return json.Marshal(p)
}

// SPI is an ESP or AH SPI. It is written as exactly eight lowercase hex
// digits, as the contract and swanctl show it ("c1a2b3c4").
type SPI uint32

func (s SPI) String() string { return fmt.Sprintf("%08x", uint32(s)) }

// MarshalText writes the eight hex digits.
func (s SPI) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads exactly eight hex digits.
func (s *SPI) UnmarshalText(b []byte) error {
	v, err := parseHex(b, 8)
	if err != nil {
		return fmt.Errorf("status: SPI %q: %v", b, err)
	}
	*s = SPI(v)
	return nil
}

// IKESPI is an IKE SA SPI, written as sixteen lowercase hex digits.
type IKESPI uint64

func (s IKESPI) String() string { return fmt.Sprintf("%016x", uint64(s)) }

// MarshalText writes the sixteen hex digits.
func (s IKESPI) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads exactly sixteen hex digits.
func (s *IKESPI) UnmarshalText(b []byte) error {
	v, err := parseHex(b, 16)
	if err != nil {
		return fmt.Errorf("status: IKE SPI %q: %v", b, err)
	}
	*s = IKESPI(v)
	return nil
}

func parseHex(b []byte, digits int) (uint64, error) {
	if len(b) != digits {
		return 0, fmt.Errorf("want %d hex digits", digits)
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, fmt.Errorf("want lowercase hex digits")
		}
	}
	return strconv.ParseUint(string(b), 16, 64)
}

// DropCounts turns a drop counter array indexed by reason (ipsec.Engine's
// Drops, netstack's Counters.Drops) into the map Status.Drops holds per
// source: reason(i) names index i, index 0 ("none") is skipped, and so
// are zero counts.
func DropCounts(counts []uint64, reason func(i int) string) map[string]uint64 {
	m := make(map[string]uint64)
	for i, n := range counts {
		if i == 0 || n == 0 {
			continue
		}
		m[reason(i)] += n
	}
	return m
}
