package ike

import (
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// IKESAStatus describes one IKE SA for status output (design.md's status
// JSON and more).
type IKESAStatus struct {
	ID         uint64 // unique per Manager
	Conn       string
	State      IKEState
	Local      netip.AddrPort
	Remote     netip.AddrPort
	Initiator  bool
	SPIi, SPIr uint64
	Proposal   string // keyword syntax: "aes256gcm16-prfsha384-ecp384"
	Suite      proposal.Suite
	LocalID    string
	RemoteID   string
	// LocalAuth and RemoteAuth are the AUTH methods each side used.
	LocalAuth, RemoteAuth message.AuthMethod
	NATLocal              bool
	NATRemote             bool
	VIPs                  []netip.Addr // virtual IPs assigned to us
	Leases                []netip.Addr // virtual IPs we assigned to the peer
	Established           time.Time
	// RekeyAt is when the next rekey (or rekey retry) starts, ExpireAt
	// when the SA is deleted for want of one (rekey_time + over_time);
	// zero when none is scheduled.
	RekeyAt, ExpireAt time.Time
	Children          []ChildSAStatus
}

// ChildSAStatus describes one Child SA. Byte and packet counters live in
// the data plane: join them by SPIIn/SPIOut (or the SA keys).
type ChildSAStatus struct {
	ID        uint64
	Name      string
	State     ChildState
	Mode      Mode
	Protocol  proposal.Protocol
	Encap     bool
	SPIIn     uint32
	SPIOut    uint32
	InSA      SAKey
	OutSA     SAKey
	ReqID     uint32
	Proposal  string // "aes128gcm16", "aes128-sha256-esn"
	Suite     proposal.Suite
	LocalTS   []TS
	RemoteTS  []TS
	Installed time.Time
	// RekeyAt is when the next rekey (or rekey retry) starts, ExpireAt
	// when the SA reaches its life_time; zero when none is scheduled.
	RekeyAt, ExpireAt time.Time
}

// Status returns a snapshot of every IKE SA, oldest first.
func (m *Manager) Status() []IKESAStatus {
	out := make([]IKESAStatus, 0, len(m.sas))
	for _, sa := range m.sortedSAs() {
		s := IKESAStatus{ID: sa.id, Conn: sa.connName(), State: sa.state, Local: sa.local, Remote: sa.remote,
			Initiator: sa.initiator, SPIi: sa.spiI, SPIr: sa.spiR, Suite: sa.suite,
			NATLocal: sa.natLocal, NATRemote: sa.natRemote, Established: sa.established,
			LocalAuth: sa.localAuth, RemoteAuth: sa.remoteAuth,
			VIPs: append([]netip.Addr(nil), sa.vips...), Leases: append([]netip.Addr(nil), sa.leases...),
			RekeyAt: sa.tRekey.due(), ExpireAt: sa.tExpire.due()}
		if sa.suite.Protocol != 0 {
			s.Proposal = sa.suite.String()
		}
		if !sa.localID.IsAny() {
			s.LocalID = sa.localID.String()
		}
		if !sa.remoteID.IsAny() {
			s.RemoteID = sa.remoteID.String()
		}
		for _, c := range sa.children {
			cs := ChildSAStatus{ID: c.id, Name: c.cfg.Name, State: c.state, Mode: c.mode, Protocol: c.cfg.Protocol,
				Encap: sa.encap(), SPIIn: c.spiIn, SPIOut: c.spiOut, ReqID: c.reqID, Suite: c.suite,
				LocalTS: append([]TS(nil), c.local...), RemoteTS: append([]TS(nil), c.remote...), Installed: c.installed,
				RekeyAt: c.tRekey.due(), ExpireAt: c.tExpire.due()}
			if c.inOK {
				cs.InSA = c.inKey
			}
			if c.outOK {
				cs.OutSA = c.outKey
			}
			if c.suite.Protocol != 0 {
				cs.Proposal = c.suite.String()
			}
			s.Children = append(s.Children, cs)
		}
		out = append(out, s)
	}
	return out
}
