package ike

import (
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Deps are the Manager's connections to the world: nothing in ike opens a
// socket, reads the clock or draws randomness except through them.
type Deps struct {
	Sender    Sender
	Installer Installer
	Clock     Clock // nil: the system clock
	// Rand supplies SPIs, nonces, private keys, cookie secrets and
	// jitter; nil is crypto/rand. It must not fail: like crypto/rand,
	// whose failure ends the process, a failing reader panics.
	Rand        io.Reader
	Credentials Credentials // PSKs and private keys
	Logger      *slog.Logger
	// KeyHook, when set, receives the keys of every IKE and Child SA
	// (save_keys, for Wireshark). Debugging only.
	KeyHook KeyHook
}

// Sender transmits IKE datagrams from our address local to remote. The
// Manager adds the non-ESP marker itself for datagrams sent from the
// NAT-T port (RFC 3948 §2.2). Send borrows data for the call only and must
// not modify it. An error is counted and the datagram treated as lost.
type Sender interface {
	Send(data []byte, local, remote netip.AddrPort) error
}

// Clock is the Manager's time source. Tests inject a manual clock and call
// Tick themselves.
type Clock interface {
	Now() time.Time
}

// Credentials supply the secrets behind the configured identities; the
// certificates and trust anchors come with the configuration.
type Credentials interface {
	// SharedKey returns the pre-shared key for an IKE SA between the
	// two identities.
	SharedKey(local, remote Identity) ([]byte, bool)
	// Signer returns the private key whose public half is pub (our
	// certificate's key).
	Signer(pub crypto.PublicKey) (crypto.Signer, bool)
}

// Installer is the data plane as IKE sees it: SPIs, SAs and policies. The
// appliance adapts ipsec.Engine to it; the concepts map one to one (ReqID
// links policies to the newest outbound SA, so installing a rekeyed
// outbound SA switches traffic atomically). Every method is called from
// the Manager's goroutine.
type Installer interface {
	// AllocSPI reserves a fresh inbound SPI.
	AllocSPI(proto proposal.Protocol) (uint32, error)
	// ReleaseSPI returns an SPI from AllocSPI that no SA uses.
	ReleaseSPI(proto proposal.Protocol, spi uint32)
	// AddSA installs one direction of a Child SA. The key slices are
	// borrowed: the Manager wipes them after the call.
	AddSA(sa SAParams) error
	// UpdateSA moves an SA to new outer addresses or UDP ports (NAT
	// mapping change, RFC 7296 §2.23). The SA's key changes with Dst.
	UpdateSA(key SAKey, u SAUpdate) error
	DeleteSA(key SAKey) error
	AddPolicy(p PolicyParams) (PolicyID, error)
	UpdatePolicy(id PolicyID, p PolicyParams) error
	DeletePolicy(id PolicyID) error
}

// SAUsage is what an Installer implements when it can say when an
// installed SA last carried traffic, as strongSwan asks the kernel for an
// SA's use time. A Child with Inactivity needs it: New refuses the
// configuration otherwise.
type SAUsage interface {
	// LastUsed returns when the SA last processed a packet, by the
	// Manager's clock; false if it has processed none, or is unknown.
	// It is called from the Manager's goroutine.
	LastUsed(key SAKey) (time.Time, bool)
}

// Direction says whether an SA protects what we send or what we receive.
type Direction uint8

const (
	DirIn Direction = iota + 1
	DirOut
)

func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return fmt.Sprintf("dir(%d)", uint8(d))
}

// SAKey names an installed SA (RFC 4301 §4.1: SPI, destination, protocol;
// plus our direction).
type SAKey struct {
	Dir   Direction
	Proto proposal.Protocol
	SPI   uint32
	Dst   netip.Addr
}

func (k SAKey) String() string {
	return fmt.Sprintf("%s %s %08x %s", k.Dir, k.Proto, k.SPI, k.Dst)
}

// Encap holds the UDP ports of ESP in UDP (RFC 3948) from the SA's point
// of view: for an outbound SA Src is our port; for an inbound SA Src is
// the peer's. Both zero: plain ESP.
type Encap struct {
	SrcPort, DstPort uint16
}

// Enabled reports whether ESP travels in UDP.
func (e Encap) Enabled() bool { return e.SrcPort != 0 || e.DstPort != 0 }

// Limits are one set of lifetime limits; zero fields are unlimited.
type Limits struct {
	Bytes, Packets uint64
	Time           time.Duration
}

// Lifetime is an SA's soft limits (the data plane reports them so that
// IKE rekeys) and hard limits (the SA stops).
type Lifetime struct {
	Soft, Hard Limits
}

// SAParams is one direction of a negotiated Child SA.
type SAParams struct {
	Dir  Direction
	SPI  uint32
	Mode Mode
	// Src and Dst are the outer addresses.
	Src, Dst netip.Addr
	Encap    Encap
	// Suite is the negotiated ESP or AH transform set.
	Suite            proposal.Suite
	EncKey, IntegKey []byte
	ReplayWindow     uint32
	Lifetime         Lifetime
	// Local and Remote are the SA's traffic selectors; Local is our side.
	Local, Remote []TS
	// ReqID ties the SA to its policy; a rekeyed SA keeps it.
	ReqID uint32
	// TFCPadding as configured (0 off, -1 to the MTU), already cleared
	// when the peer refused TFC padding.
	TFCPadding      int
	CopyDF, CopyECN bool
	CopyDSCP        CopyDSCP
}

// Key is the key the SA is installed under.
func (p *SAParams) Key() SAKey {
	return SAKey{Dir: p.Dir, Proto: p.Suite.Protocol, SPI: p.SPI, Dst: p.Dst}
}

// SAUpdate is a new outer path for an SA.
type SAUpdate struct {
	Src, Dst netip.Addr
	Encap    Encap
}

// PolicyID names an installed policy.
type PolicyID uint32

// PolicyParams is one PROTECT entry of the SPD for a Child SA (or a trap
// for one): traffic between Local and Remote goes through the newest
// outbound SA with ReqID. Policies apply to both directions.
type PolicyParams struct {
	ReqID         uint32
	Local, Remote []TS
	// Priority orders overlapping entries: lower first. Narrower
	// selectors get lower values.
	Priority uint32
	// Acquire asks for an EventAcquire when traffic finds no SA (trap).
	Acquire bool
}

// EventKind says what the data plane reports.
type EventKind uint8

const (
	// EventSoftExpire: an SA reached a soft lifetime; rekey it.
	EventSoftExpire EventKind = iota + 1
	// EventHardExpire: an SA reached a hard lifetime and stopped.
	EventHardExpire
	// EventSeqExhausted: an outbound SA used its last sequence number.
	EventSeqExhausted
	// EventAcquire: traffic matched a trap policy without an SA.
	EventAcquire
)

func (k EventKind) String() string {
	switch k {
	case EventSoftExpire:
		return "soft-expire"
	case EventHardExpire:
		return "hard-expire"
	case EventSeqExhausted:
		return "seq-exhausted"
	case EventAcquire:
		return "acquire"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// DataPlaneEvent is what the data plane reports to IKE.
type DataPlaneEvent struct {
	Kind  EventKind
	ReqID uint32
	// SA names the SA of an expiry or exhaustion event.
	SA SAKey
	// Packet describes the traffic behind an acquire: its addresses,
	// protocol and ports become the first selector pair (RFC 7296 §2.9).
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
}

// KeyHook receives SA keys for debugging (Wireshark's
// ikev2_decryption_table and esp_sa). The slices are copies the hook may
// keep.
type KeyHook interface {
	IKEKeys(IKEKeyInfo)
	ChildKeys(ChildKeyInfo)
}

// IKEKeyInfo is one IKE SA's keys.
type IKEKeyInfo struct {
	Conn       string
	SPIi, SPIr uint64
	Suite      proposal.Suite
	SKei, SKer []byte // with any salt
	SKai, SKar []byte // nil for AEAD
}

// ChildKeyInfo is one direction of a Child SA's keys.
type ChildKeyInfo struct {
	Conn, Child      string
	Dir              Direction
	SPI              uint32
	Src, Dst         netip.Addr
	Suite            proposal.Suite
	EncKey, IntegKey []byte
}

// systemClock is the process clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
