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
// every value and resolved every reference, so this only copies; what the
// IKE engine cannot do is refused here, by name, rather than ignored.
// notes are settings the data plane honours only in part, for the log.
func ikeConfig(cfg *config.Config) (ic ike.Config, creds ike.StaticCredentials, notes []string, err error) {
	ic.Policy = cfg.Device.ProposalPolicy()
	for _, p := range cfg.Pools {
		ic.Pools = append(ic.Pools, &ike.Pool{Name: p.Name, First: p.First, Last: p.Last, DNS: p.DNS, Subnets: p.Subnets})
	}
	var errs []error
	for _, c := range cfg.Connections {
		conn, n, err := ikeConnection(cfg, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("connection %s: %w", c.Name, err))
			continue
		}
		notes = append(notes, n...)
		ic.Connections = append(ic.Connections, conn)
	}
	if err := errors.Join(errs...); err != nil {
		return ike.Config{}, ike.StaticCredentials{}, nil, err
	}

	for _, s := range cfg.Secrets.IKE {
		psk := ike.PSK{Secret: s.Secret}
		for _, id := range s.IDs {
			psk.IDs = append(psk.IDs, identity(id))
		}
		creds.PSKs = append(creds.PSKs, psk)
	}
	seen := map[crypto.Signer]bool{}
	addKey := func(k crypto.Signer) {
		if k != nil && !seen[k] {
			seen[k] = true
			creds.Keys = append(creds.Keys, k)
		}
	}
	for _, k := range cfg.Secrets.Private {
		addKey(k.Key)
	}
	for _, c := range cfg.Connections {
		addKey(c.Local.Key)
	}
	return ic, creds, notes, nil
}

func ikeConnection(cfg *config.Config, c *config.Connection) (*ike.Connection, []string, error) {
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
		return nil, nil, fmt.Errorf("local: %w", err)
	}
	if conn.Remote, err = authConfig(c.Remote, cfg.Device.AllowLegacy); err != nil {
		return nil, nil, fmt.Errorf("remote: %w", err)
	}
	var notes []string
	for _, ch := range c.Children {
		child, n := ikeChild(ch)
		for _, s := range n {
			notes = append(notes, fmt.Sprintf("%s/%s: %s", c.Name, ch.Name, s))
		}
		conn.Children = append(conn.Children, child)
	}
	return conn, notes, nil
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
	if len(a.Pubkeys) > 0 {
		return out, errors.New("raw public keys (pubkeys, RFC 7670) are not supported by the IKE engine; use certificates")
	}
	return out, nil
}

func identity(id config.Identity) ike.Identity {
	if id.IsAny() {
		return ike.Identity{}
	}
	return ike.Identity{Type: message.IDType(id.Type), Data: id.Data}
}

func ikeChild(ch *config.Child) (*ike.Child, []string) {
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
		CopyDSCP:     map[config.CopyDSCP]ike.CopyDSCP{config.CopyDSCPOut: ike.CopyDSCPOut, config.CopyDSCPIn: ike.CopyDSCPIn, config.CopyDSCPYes: ike.CopyDSCPYes, config.CopyDSCPNo: ike.CopyDSCPNo}[ch.CopyDSCP],
	}
	if ch.Mode == config.Transport {
		child.Mode = ike.ModeTransport
	}
	var notes []string
	if ch.CopyDSCP == config.CopyDSCPIn || ch.CopyDSCP == config.CopyDSCPYes {
		notes = append(notes, "copy_dscp: the data plane keeps the inner DSCP on decapsulation (outer-to-inner copy is not implemented)")
	}
	if ch.TFCPadding > 0 {
		notes = append(notes, fmt.Sprintf("tfc_padding = %d: the data plane pads every packet to the MTU, which covers the minimum", ch.TFCPadding))
	}
	if ch.Inactivity > 0 {
		notes = append(notes, "inactivity: not implemented by the IKE engine; the Child SA is not closed when idle")
	}
	return child, notes
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
