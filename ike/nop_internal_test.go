package ike

import (
	"net/netip"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

type nopSender struct{}

func (nopSender) Send([]byte, netip.AddrPort, netip.AddrPort) error { return nil }

type nopInstaller struct{}

func (nopInstaller) AllocSPI(proposal.Protocol) (uint32, error) { return 0x1000, nil }
func (nopInstaller) ReleaseSPI(proposal.Protocol, uint32)       {}
func (nopInstaller) AddSA(SAParams) error                       { return nil }
func (nopInstaller) UpdateSA(SAKey, SAUpdate) error             { return nil }
func (nopInstaller) DeleteSA(SAKey) error                       { return nil }
func (nopInstaller) AddPolicy(PolicyParams) (PolicyID, error)   { return 1, nil }
func (nopInstaller) UpdatePolicy(PolicyID, PolicyParams) error  { return nil }
func (nopInstaller) DeletePolicy(PolicyID) error                { return nil }
