package runtime

import (
	"fmt"
	"net/netip"

	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/ipsec"
)

// SPD priorities of the device's own entries. IKE gives its PROTECT
// entries priorities from policyPriority in ike (roughly 32 000 to
// 65 536, narrower selectors first); bypass rules come before every one
// of them ([policy] bypass takes precedence over children) and the
// default entry after.
const (
	bypassRulePriority    = 1       // + the rule's index, in file order
	defaultBypassPriority = 1 << 24 // [policy] default = "bypass"
)

// installDevicePolicy installs [policy]: its bypass rules as BYPASS
// entries, and for default = "bypass" a catch-all BYPASS entry behind
// every child. With default = "discard" nothing is installed for the
// rest: the engine discards (and counts) red traffic that matches no
// entry, so a forgotten entry fails closed.
func (r *Runtime) installDevicePolicy() error {
	for i, rule := range r.cfg.Policy.Bypass {
		p := ipsec.Policy{
			Priority: uint32(bypassRulePriority + i),
			Selectors: ipsec.Selectors{
				Local:  []ipsec.TS{configTS(rule.Local)},
				Remote: []ipsec.TS{configTS(rule.Remote)},
			},
			Action: ipsec.ActionBypass,
		}
		id, err := r.engine.AddPolicy(p)
		if err != nil {
			return fmt.Errorf("[policy] bypass %d (%v <-> %v): %w", i+1, rule.Local, rule.Remote, err)
		}
		r.log.Warn("bypass rule installed: matching red traffic crosses the black link in clear",
			"id", id, "local", rule.Local.String(), "remote", rule.Remote.String())
	}
	if r.cfg.Policy.Default != config.Bypass {
		r.log.Info("default policy: discard red traffic that no child or bypass rule covers")
		return nil
	}
	all := []ipsec.TS{
		ipsec.PrefixTS(netip.MustParsePrefix("0.0.0.0/0")),
		ipsec.PrefixTS(netip.MustParsePrefix("::/0")),
	}
	p := ipsec.Policy{Priority: defaultBypassPriority, Selectors: ipsec.Selectors{Local: all, Remote: all}, Action: ipsec.ActionBypass}
	if _, err := r.engine.AddPolicy(p); err != nil {
		return fmt.Errorf("[policy] default = bypass: %w", err)
	}
	r.log.Warn("default policy is BYPASS: red traffic that no child covers crosses the black link in clear")
	return nil
}

// configTS is a [policy] selector as an SPD selector; bypass selectors
// are never dynamic.
func configTS(t config.TrafficSelector) ipsec.TS {
	s := ipsec.TS{Proto: t.Proto, From: t.Addrs.From, To: t.Addrs.To, FromPort: t.FromPort, ToPort: t.ToPort}
	if t.Proto == 0 || t.FromPort > t.ToPort {
		s.FromPort, s.ToPort = 0, 0xffff
	}
	return s
}
