package runtime

import (
	"errors"
	"log/slog"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// installer adapts *ipsec.Engine to ike.Installer. The concepts map one
// to one: a PROTECT policy names its outbound SA by ReqID, and the engine
// sends the ReqID's traffic through the newest outbound SA installed
// under it. IKE installs a rekeyed Child SA inbound first, then
// outbound, and deletes the old pair afterwards; each AddSA publishes a
// new SAD snapshot atomically, so every packet finds either the old
// outbound SA or the new one, and both inbound SAs are live while the
// peer switches (make-before-break, RFC 7296 §2.8).
type installer struct {
	engine *ipsec.Engine
	log    *slog.Logger
	// tunnels, when set, hears the outbound SA count after every
	// install and delete (Options.Tunnels).
	tunnels func(outbound int)
	// usage answers IKE's inactivity checks.
	usage *saUsage
}

var (
	_ ike.Installer = installer{}
	_ ike.SAUsage   = installer{}
)

func (in installer) AllocSPI(proposal.Protocol) (uint32, error) {
	// ESP and AH share one SPI space in the engine: an inbound SA is
	// found by SPI first, whatever its protocol.
	return in.engine.AllocSPI()
}

func (in installer) ReleaseSPI(_ proposal.Protocol, spi uint32) { in.engine.ReleaseSPI(spi) }

func (in installer) AddSA(p ike.SAParams) error {
	cfg, err := saConfig(p)
	if err == nil {
		err = in.engine.AddSA(cfg)
	}
	if err != nil {
		in.log.Warn("data plane refused SA", "dir", p.Dir, "spi", spiString(p.SPI), "reqid", p.ReqID, "err", err)
		return err
	}
	in.log.Debug("SA installed", "dir", p.Dir, "spi", spiString(p.SPI), "reqid", p.ReqID,
		"src", p.Src, "dst", p.Dst, "encap", p.Encap.Enabled(), "suite", p.Suite.String())
	in.reportTunnels()
	return nil
}

// reportTunnels counts the outbound SAs for Options.Tunnels. It runs on
// the control plane only, so listing the SAs costs nothing per packet.
func (in installer) reportTunnels() {
	if in.tunnels == nil {
		return
	}
	n := 0
	for _, sa := range in.engine.SAs() {
		if sa.Key.Dir == ipsec.DirOut && (sa.State == ipsec.SAActive || sa.State == ipsec.SASoftExpired) {
			n++
		}
	}
	in.tunnels(n)
}

func (in installer) UpdateSA(k ike.SAKey, u ike.SAUpdate) error {
	enc := ipsec.UDPEncap{SrcPort: u.Encap.SrcPort, DstPort: u.Encap.DstPort}
	_, err := in.engine.UpdateSA(saKey(k), ipsec.SAUpdate{Src: u.Src, Dst: u.Dst, Encap: &enc})
	if err != nil {
		in.log.Warn("data plane refused SA update", "sa", k.String(), "err", err)
		return err
	}
	in.log.Info("SA moved", "dir", k.Dir, "spi", spiString(k.SPI), "src", u.Src, "dst", u.Dst, "encap", u.Encap.Enabled())
	return nil
}

func (in installer) DeleteSA(k ike.SAKey) error {
	if err := in.engine.DeleteSA(saKey(k)); err != nil {
		in.log.Warn("data plane could not delete SA", "sa", k.String(), "err", err)
		return err
	}
	in.log.Debug("SA deleted", "dir", k.Dir, "spi", spiString(k.SPI))
	in.reportTunnels()
	return nil
}

func (in installer) AddPolicy(p ike.PolicyParams) (ike.PolicyID, error) {
	id, err := in.engine.AddPolicy(protectPolicy(p))
	if err != nil {
		in.log.Warn("data plane refused policy", "reqid", p.ReqID, "local", p.Local, "remote", p.Remote, "err", err)
		return 0, err
	}
	in.log.Debug("policy installed", "id", id, "reqid", p.ReqID, "local", p.Local, "remote", p.Remote, "trap", p.Acquire)
	return ike.PolicyID(id), nil
}

func (in installer) UpdatePolicy(id ike.PolicyID, p ike.PolicyParams) error {
	if err := in.engine.UpdatePolicy(ipsec.PolicyID(id), protectPolicy(p)); err != nil {
		in.log.Warn("data plane refused policy update", "id", id, "reqid", p.ReqID, "err", err)
		return err
	}
	return nil
}

func (in installer) DeletePolicy(id ike.PolicyID) error {
	if err := in.engine.DeletePolicy(ipsec.PolicyID(id)); err != nil {
		in.log.Warn("data plane could not delete policy", "id", id, "err", err)
		return err
	}
	in.log.Debug("policy deleted", "id", id)
	return nil
}

// protectPolicy is IKE's PROTECT entry (or trap) as an SPD entry.
func protectPolicy(p ike.PolicyParams) ipsec.Policy {
	return ipsec.Policy{
		Priority:  p.Priority,
		Selectors: ipsec.Selectors{Local: selectors(p.Local), Remote: selectors(p.Remote)},
		Action:    ipsec.ActionProtect,
		ReqID:     p.ReqID,
		Acquire:   p.Acquire,
	}
}

// LastUsed implements ike.SAUsage from the engine's counters.
func (in installer) LastUsed(k ike.SAKey) (time.Time, bool) { return in.usage.LastUsed(k) }

// saConfig translates one negotiated direction of a Child SA. What the
// engine cannot do is refused, never dropped: firmware/config admits none
// of it, so an error here means a caller other than the configuration.
func saConfig(p ike.SAParams) (ipsec.SAConfig, error) {
	switch {
	case p.TFCPadding > 0:
		return ipsec.SAConfig{}, errors.New("runtime: TFC padding to a minimum size: the data plane pads to the MTU only")
	case p.TFCPadding < 0 && (p.Mode != ike.ModeTunnel || p.Suite.Protocol != proposal.ProtoESP):
		return ipsec.SAConfig{}, errors.New("runtime: TFC padding needs ESP in tunnel mode")
	}
	outer, err := outerHeader(p)
	if err != nil {
		return ipsec.SAConfig{}, err
	}
	cfg := ipsec.SAConfig{
		Dir:          direction(p.Dir),
		SPI:          p.SPI,
		Mode:         ipsec.ModeTunnel,
		Src:          p.Src,
		Dst:          p.Dst,
		Encap:        ipsec.UDPEncap{SrcPort: p.Encap.SrcPort, DstPort: p.Encap.DstPort},
		Suite:        p.Suite,
		EncKey:       p.EncKey,
		IntegKey:     p.IntegKey,
		ReplayWindow: int(p.ReplayWindow),
		Lifetime: ipsec.Lifetime{
			Soft: ipsec.Limits{Bytes: p.Lifetime.Soft.Bytes, Packets: p.Lifetime.Soft.Packets, Time: p.Lifetime.Soft.Time},
			Hard: ipsec.Limits{Bytes: p.Lifetime.Hard.Bytes, Packets: p.Lifetime.Hard.Packets, Time: p.Lifetime.Hard.Time},
		},
		Selectors: ipsec.Selectors{Local: selectors(p.Local), Remote: selectors(p.Remote)},
		TFC:       p.TFCPadding != 0, // to the MTU (tfc_padding = "mtu")
		Outer:     outer,
		ReqID:     p.ReqID,
	}
	if p.Mode == ike.ModeTransport {
		cfg.Mode = ipsec.ModeTransport
	}
	return cfg, nil
}

// outerHeader maps swanctl's copy_df, copy_ecn and copy_dscp onto the
// tunnel header the engine builds (RFC 4301 §5.1.2.1, RFC 6040). The
// engine never copies DSCP from outer to inner, so "in" and "yes" are
// refused.
func outerHeader(p ike.SAParams) (ipsec.OuterHeader, error) {
	h := ipsec.OuterHeader{DF: ipsec.DFClear, ECN: ipsec.ECNCompat}
	if p.CopyDF {
		h.DF = ipsec.DFCopy
	}
	if p.CopyECN {
		h.ECN = ipsec.ECNNormal
	}
	switch p.CopyDSCP {
	case ike.CopyDSCPOut:
	case ike.CopyDSCPNo:
		// Nothing goes from inner to outer: the outer header carries
		// best effort (DSCP 0).
		h.SetDSCP, h.DSCP = true, 0
	default:
		return h, errors.New("runtime: copy_dscp in or yes: the data plane never copies DSCP from the outer header to the inner one")
	}
	return h, nil
}

// selectors converts IKE's selectors. An OPAQUE port range (RFC 4301
// §4.4.1.1) becomes the full range, which the engine also matches
// against packets whose ports are unknown: the policy covers more
// traffic, never less.
func selectors(ts []ike.TS) []ipsec.TS {
	out := make([]ipsec.TS, 0, len(ts))
	for _, t := range ts {
		s := ipsec.TS{Proto: t.Proto, From: t.From, To: t.To, FromPort: t.FromPort, ToPort: t.ToPort}
		if t.FromPort > t.ToPort || t.Proto == 0 {
			s.FromPort, s.ToPort = 0, 0xffff
		}
		out = append(out, s)
	}
	return out
}

func direction(d ike.Direction) ipsec.Direction {
	if d == ike.DirOut {
		return ipsec.DirOut
	}
	return ipsec.DirIn
}

// saKey names IKE's SA in the engine. The adapter never asks for
// source matching (MatchSrc), so engine keys carry no source.
func saKey(k ike.SAKey) ipsec.SAKey {
	return ipsec.SAKey{Dir: direction(k.Dir), Proto: k.Proto, SPI: k.SPI, Dst: k.Dst}
}

// ikeKey is the reverse of saKey, for events.
func ikeKey(k ipsec.SAKey) ike.SAKey {
	d := ike.DirIn
	if k.Dir == ipsec.DirOut {
		d = ike.DirOut
	}
	return ike.SAKey{Dir: d, Proto: k.Proto, SPI: k.SPI, Dst: k.Dst}
}
