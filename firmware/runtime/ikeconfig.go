package runtime

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/message"
)

// ikeConfig translates a loaded configuration into the IKE manager's
// configuration and credentials. firmware/config has already validated
// every value and resolved every reference, and it admits only what the
// runtime honours, so this copies every setting; it has no path that
// drops one (TestEveryConfigFieldReachesTheRuntime keeps it so).
func ikeConfig(cfg *config.Config) (ike.Config, credentials, error) {
	ic := ike.Config{Policy: cfg.Device.ProposalPolicy()}
	for _, p := range cfg.Pools {
		ic.Pools = append(ic.Pools, &ike.Pool{Name: p.Name, First: p.First, Last: p.Last, DNS: p.DNS, Subnets: p.Subnets})
	}
	var creds credentials
	var errs []error
	for _, c := range cfg.Connections {
		conn, err := ikeConnection(cfg, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("connection %s: %w", c.Name, err))
			continue
		}
		ic.Connections = append(ic.Connections, conn)
		if c.PSK != nil {
			creds.psks = append(creds.psks, connPSK{local: conn.Local.ID, remote: conn.Remote.ID, secret: c.PSK})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ike.Config{}, credentials{}, err
	}
	addKey := func(k crypto.Signer) {
		if k == nil {
			return
		}
		// By public key: a signer may be unhashable (ed25519.PrivateKey
		// is a slice), so no map.
		if _, dup := creds.keys.Signer(k.Public()); !dup {
			creds.keys.Keys = append(creds.keys.Keys, k)
		}
	}
	for _, k := range cfg.Secrets.Private {
		addKey(k.Key)
	}
	for _, c := range cfg.Connections {
		addKey(c.Local.Key)
	}
	return ic, creds, nil
}

// credentials are IKE's secrets (ike.Credentials). The pre-shared keys
// are the ones firmware/config chose per connection (Connection.PSK, by
// swanctl's ranking of the [secrets] ike sections, which `bitw check`
// validates: an ambiguous or missing key is an error there), looked up by
// the connection's identities, so `bitw run` uses exactly the key that
// `bitw check` accepted.
type credentials struct {
	psks []connPSK
	keys ike.StaticCredentials // private keys
}

type connPSK struct {
	local, remote ike.Identity // as configured; remote may be %any
	secret        []byte
}

var _ ike.Credentials = credentials{}

// SharedKey returns the key of the connection between the two identities;
// a connection that names the peer beats one that accepts %any.
func (c credentials) SharedKey(local, remote ike.Identity) ([]byte, bool) {
	var anyPeer []byte
	for _, p := range c.psks {
		if !p.local.Matches(wireID(local)) {
			continue
		}
		switch {
		case p.remote.IsAny():
			if anyPeer == nil {
				anyPeer = p.secret
			}
		case p.remote.Matches(wireID(remote)):
			return p.secret, true
		}
	}
	return anyPeer, anyPeer != nil
}

func (c credentials) Signer(pub crypto.PublicKey) (crypto.Signer, bool) { return c.keys.Signer(pub) }

func wireID(id ike.Identity) message.ID { return message.ID{Type: id.Type, Data: id.Data} }

func ikeConnection(cfg *config.Config, c *config.Connection) (*ike.Connection, error) {
	conn := &ike.Connection{
		Name:          c.Name,
		LocalAddrs:    c.LocalAddrs,
		LocalPort:     c.LocalPort,
		RemotePort:    c.RemotePort,
		Proposals:     c.Proposals,
		VIPs:          c.VIPs,
		ForceEncap:    c.Encap,
		DPDDelay:      c.DPDDelay,
		DPDTimeout:    c.DPDTimeout,
		SendCertReq:   c.SendCertReq,
		KeyingTries:   c.KeyingTries,
		RekeyTime:     c.RekeyTime,
		OverTime:      c.OverTime,
		RandTime:      c.RandTime,
		Fragmentation: map[config.Fragmentation]ike.Fragmentation{config.FragmentYes: ike.FragmentYes, config.FragmentAccept: ike.FragmentAccept, config.FragmentNo: ike.FragmentNo}[c.Fragmentation],
		Childless:     map[config.Childless]ike.Childless{config.ChildlessAllow: ike.ChildlessAllow, config.ChildlessForce: ike.ChildlessForce, config.ChildlessNever: ike.ChildlessNever}[c.Childless],
		SendCert:      map[config.SendCert]ike.SendCert{config.SendCertIfAsked: ike.SendCertIfAsked, config.SendCertAlways: ike.SendCertAlways, config.SendCertNever: ike.SendCertNever}[c.SendCert],
		Unique:        map[config.Unique]ike.Unique{config.UniqueNo: ike.UniqueNo, config.UniqueNever: ike.UniqueNever, config.UniqueReplace: ike.UniqueReplace, config.UniqueKeep: ike.UniqueKeep}[c.Unique],
	}
	for _, r := range c.RemoteAddrs {
		conn.RemoteAddrs = append(conn.RemoteAddrs, ike.AddrRange{From: r.From, To: r.To})
	}
	for _, p := range c.Pools {
		conn.Pools = append(conn.Pools, p.Name)
	}
	var err error
	// SHA-1 signatures are legacy (RFC 8247 §3.2), admitted with the
	// rest of it.
	if conn.Local, err = authConfig(c.Local, cfg.Device.AllowLegacy); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if conn.Remote, err = authConfig(c.Remote, cfg.Device.AllowLegacy); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	for _, ch := range c.Children {
		conn.Children = append(conn.Children, ikeChild(ch))
	}
	return conn, nil
}

func authConfig(a config.Auth, allowSHA1 bool) (ike.AuthConfig, error) {
	out := ike.AuthConfig{ID: identity(a.ID), Certs: a.Certs, CACerts: a.CACerts, AllowSHA1: allowSHA1}
	switch a.Method {
	case config.AuthPSK:
		out.Method = ike.AuthPSK
	case config.AuthPubkey:
		out.Method = ike.AuthPubkey
	case config.AuthNull:
		out.Method = ike.AuthNull
	default:
		return out, fmt.Errorf("authentication method %v", a.Method)
	}
	return out, nil
}

func identity(id config.Identity) ike.Identity {
	if id.IsAny() {
		return ike.Identity{}
	}
	return ike.Identity{Type: message.IDType(id.Type), Data: id.Data}
}

func ikeChild(ch *config.Child) *ike.Child {
	child := &ike.Child{
		Name:         ch.Name,
		LocalTS:      trafficSelectors(ch.LocalTS),
		RemoteTS:     trafficSelectors(ch.RemoteTS),
		Protocol:     ch.Protocol,
		Proposals:    ch.Proposals,
		Mode:         ike.ModeTunnel,
		StartAction:  action(ch.StartAction),
		DPDAction:    action(ch.DPDAction),
		CloseAction:  action(ch.CloseAction),
		RekeyTime:    ch.RekeyTime,
		LifeTime:     ch.LifeTime,
		RandTime:     ch.RandTime,
		RekeyBytes:   ch.RekeyBytes,
		LifeBytes:    ch.LifeBytes,
		RandBytes:    ch.RandBytes,
		RekeyPackets: ch.RekeyPackets,
		LifePackets:  ch.LifePackets,
		RandPackets:  ch.RandPackets,
		ReplayWindow: ch.ReplayWindow,
		TFCPadding:   ch.TFCPadding,
		CopyDF:       ch.CopyDF,
		CopyECN:      ch.CopyECN,
		CopyDSCP:     map[config.CopyDSCP]ike.CopyDSCP{config.CopyDSCPOut: ike.CopyDSCPOut, config.CopyDSCPNo: ike.CopyDSCPNo}[ch.CopyDSCP],
		Inactivity:   ch.Inactivity,
	}
	if ch.Mode == config.Transport {
		child.Mode = ike.ModeTransport
	}
	return child
}

func action(a config.Action) ike.Action {
	switch a {
	case config.ActionTrap:
		return ike.ActionTrap
	case config.ActionStart:
		return ike.ActionStart
	}
	return ike.ActionNone
}

func trafficSelectors(ts []config.TrafficSelector) []ike.TrafficSelector {
	out := make([]ike.TrafficSelector, 0, len(ts))
	for _, t := range ts {
		ts := ike.TrafficSelector{Dynamic: t.Dynamic, TS: ike.TS{Proto: t.Proto, FromPort: t.FromPort, ToPort: t.ToPort}}
		if !t.Dynamic {
			ts.From, ts.To = t.Addrs.From, t.Addrs.To
		}
		out = append(out, ts)
	}
	return out
}
