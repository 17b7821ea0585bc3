package harness

import "time"

// Names of the site-to-site connection SiteToSite builds.
const (
	DefaultConnName  = "gw-gw"
	DefaultChildName = "net"
)

// SiteToSite describes the tunnel between the two gateways' red subnets,
// as a strongSwan gateway configures it.
type SiteToSite struct {
	ConnName     string   // default DefaultConnName
	ChildName    string   // default DefaultChildName
	Proposals    []string // IKE; strongSwan's default if empty
	ESPProposals []string // strongSwan's default if empty
	// PSK selects pre-shared-key authentication.
	PSK string
	// PKI and Identity select certificate authentication: this gateway's
	// certificate and key plus the CA that must have signed the peer's.
	PKI      *PKI
	Identity *Identity
	// StartAction of the child: none (default), trap or start.
	StartAction    string
	DPDDelay       time.Duration
	RekeyTime      time.Duration // IKE
	ChildRekeyTime time.Duration
	// Extra and ChildExtra add verbatim key = value lines.
	Extra, ChildExtra map[string]string
}

// ID is the gateway's IKE identity: "gw-a.example" or "gw-b.example".
func (g *Gateway) ID() string { return g.Name + ".example" }

// PeerID is the other gateway's IKE identity.
func (g *Gateway) PeerID() string {
	if g.Name == "gw-a" {
		return "gw-b.example"
	}
	return "gw-a.example"
}

// SwanctlConfig returns the swanctl configuration for a strongSwan running
// on this gateway: local address, peer address and red subnets from the
// topology (IPv6 selectors too when the topology has IPv6), identities
// gw-a.example and gw-b.example, MOBIKE off.
func (g *Gateway) SwanctlConfig(s SiteToSite) SwanctlConfig {
	conn := SwanConn{
		Name:        s.ConnName,
		LocalAddrs:  []string{g.Black4.Addr().String()},
		RemoteAddrs: []string{g.Peer4.String()},
		Proposals:   s.Proposals,
		DPDDelay:    s.DPDDelay,
		RekeyTime:   s.RekeyTime,
		Extra:       s.Extra,
	}
	if conn.Name == "" {
		conn.Name = DefaultConnName
	}
	child := SwanChild{
		Name:         s.ChildName,
		LocalTS:      []string{g.LocalNet4.String()},
		RemoteTS:     []string{g.RemoteNet4.String()},
		ESPProposals: s.ESPProposals,
		StartAction:  s.StartAction,
		RekeyTime:    s.ChildRekeyTime,
		Extra:        s.ChildExtra,
	}
	if child.Name == "" {
		child.Name = DefaultChildName
	}
	if g.LocalNet6.IsValid() {
		child.LocalTS = append(child.LocalTS, g.LocalNet6.String())
		child.RemoteTS = append(child.RemoteTS, g.RemoteNet6.String())
	}
	conn.Children = []SwanChild{child}
	cfg := SwanctlConfig{}
	switch {
	case s.PKI != nil && s.Identity != nil:
		conn.Local = SwanAuth{Auth: "pubkey", ID: g.ID(), Certs: []string{s.Identity.Name + ".pem"}}
		conn.Remote = SwanAuth{Auth: "pubkey", ID: g.PeerID(), CACerts: []string{"ca.pem"}}
		cfg.Files = s.PKI.SwanctlFiles(s.Identity)
		cfg.Secrets = []SwanSecret{{Type: "private", File: s.Identity.Name + ".key"}}
	default:
		conn.Local = SwanAuth{Auth: "psk", ID: g.ID()}
		conn.Remote = SwanAuth{Auth: "psk", ID: g.PeerID()}
		cfg.Secrets = []SwanSecret{{Type: "ike", IDs: []string{g.ID(), g.PeerID()}, Secret: s.PSK}}
	}
	cfg.Connections = []SwanConn{conn}
	return cfg
}
