package ikee2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// engineInstaller adapts ipsec.Engine to ike.Installer: the concepts map
// one to one, so this is the shape of the appliance's adapter.
type engineInstaller struct {
	e *ipsec.Engine
}

func (a engineInstaller) AllocSPI(proposal.Protocol) (uint32, error) { return a.e.AllocSPI() }
func (a engineInstaller) ReleaseSPI(_ proposal.Protocol, spi uint32) { a.e.ReleaseSPI(spi) }

func key(k ike.SAKey) ipsec.SAKey {
	d := ipsec.DirIn
	if k.Dir == ike.DirOut {
		d = ipsec.DirOut
	}
	return ipsec.SAKey{Dir: d, Proto: k.Proto, SPI: k.SPI, Dst: k.Dst}
}

func selectors(local, remote []ike.TS) ipsec.Selectors {
	conv := func(l []ike.TS) []ipsec.TS {
		out := make([]ipsec.TS, len(l))
		for i, t := range l {
			out[i] = ipsec.TS{Proto: t.Proto, From: t.From, To: t.To, FromPort: t.FromPort, ToPort: t.ToPort}
		}
		return out
	}
	return ipsec.Selectors{Local: conv(local), Remote: conv(remote)}
}

func (a engineInstaller) AddSA(p ike.SAParams) error {
	c := ipsec.SAConfig{
		Dir: ipsec.DirIn, SPI: p.SPI, Mode: ipsec.ModeTunnel, Src: p.Src, Dst: p.Dst,
		Encap: ipsec.UDPEncap{SrcPort: p.Encap.SrcPort, DstPort: p.Encap.DstPort},
		Suite: p.Suite, EncKey: p.EncKey, IntegKey: p.IntegKey, ReplayWindow: int(p.ReplayWindow),
		Lifetime: ipsec.Lifetime{
			Soft: ipsec.Limits{Bytes: p.Lifetime.Soft.Bytes, Packets: p.Lifetime.Soft.Packets, Time: p.Lifetime.Soft.Time},
			Hard: ipsec.Limits{Bytes: p.Lifetime.Hard.Bytes, Packets: p.Lifetime.Hard.Packets, Time: p.Lifetime.Hard.Time},
		},
		Selectors: selectors(p.Local, p.Remote), TFC: p.TFCPadding != 0, ReqID: p.ReqID,
	}
	if p.Dir == ike.DirOut {
		c.Dir = ipsec.DirOut
	}
	if p.Mode == ike.ModeTransport {
		c.Mode = ipsec.ModeTransport
	}
	if !p.CopyDF {
		c.Outer.DF = ipsec.DFClear
	}
	if !p.CopyECN {
		c.Outer.ECN = ipsec.ECNCompat
	}
	return a.e.AddSA(c)
}

func (a engineInstaller) UpdateSA(k ike.SAKey, u ike.SAUpdate) error {
	_, err := a.e.UpdateSA(key(k), ipsec.SAUpdate{Src: u.Src, Dst: u.Dst,
		Encap: &ipsec.UDPEncap{SrcPort: u.Encap.SrcPort, DstPort: u.Encap.DstPort}})
	return err
}

func (a engineInstaller) DeleteSA(k ike.SAKey) error { return a.e.DeleteSA(key(k)) }

func (a engineInstaller) AddPolicy(p ike.PolicyParams) (ike.PolicyID, error) {
	id, err := a.e.AddPolicy(ipsec.Policy{Priority: p.Priority, Selectors: selectors(p.Local, p.Remote),
		Action: ipsec.ActionProtect, ReqID: p.ReqID, Acquire: p.Acquire})
	return ike.PolicyID(id), err
}

func (a engineInstaller) UpdatePolicy(id ike.PolicyID, p ike.PolicyParams) error {
	return a.e.UpdatePolicy(ipsec.PolicyID(id), ipsec.Policy{Priority: p.Priority, Selectors: selectors(p.Local, p.Remote),
		Action: ipsec.ActionProtect, ReqID: p.ReqID, Acquire: p.Acquire})
}

func (a engineInstaller) DeletePolicy(id ike.PolicyID) error {
	return a.e.DeletePolicy(ipsec.PolicyID(id))
}

// openTUN creates a TUN device (no packet information header) in the
// current thread's namespace, as a non-blocking, pollable file.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	binary.NativeEndian.PutUint16(req[unix.IFNAMSIZ:], unix.IFF_TUN|unix.IFF_NO_PI)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF: %w", errno)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// dataPlane moves red packets between the TUN device and ESP in UDP on
// the NAT-T socket through the engine.
type dataPlane struct {
	e       *ipsec.Engine
	tun     *os.File
	natt    *net.UDPConn
	local   netip.AddrPort
	out, in atomic.Uint64 // packets sealed and opened
	drops   atomic.Uint64
}

// fromTUN seals what the kernel routes into the tunnel.
func (d *dataPlane) fromTUN() {
	b := ipsec.NewBuffer(2048)
	for {
		b.Reset(ipsec.DefaultHeadroom)
		space := b.Space()
		n, err := d.tun.Read(space)
		if err != nil {
			return
		}
		b.Extend(n)
		r := d.e.Outbound(b, 1500)
		if r.Verdict != ipsec.VerdictForward {
			d.drops.Add(1)
			continue
		}
		pkt := b.Bytes()
		ihl := int(pkt[0]&0x0f) * 4
		if pkt[0]>>4 != 4 || len(pkt) < ihl+8 || pkt[9] != unix.IPPROTO_UDP {
			d.drops.Add(1) // only ESP in UDP over IPv4 here: kernel-libipsec encapsulates
			continue
		}
		dport := binary.BigEndian.Uint16(pkt[ihl+2:])
		if _, err := d.natt.WriteToUDPAddrPort(pkt[ihl+8:], netip.AddrPortFrom(r.NextHop, dport)); err == nil {
			d.out.Add(1)
		}
	}
}

// esp opens one ESP-in-UDP datagram that arrived on the NAT-T socket and
// writes the inner packet to the TUN device. The engine takes whole IP
// packets, so the outer IPv4 and UDP headers are put back.
func (d *dataPlane) esp(data []byte, from netip.AddrPort) error {
	b := ipsec.NewBuffer(len(data) + 64)
	b.Reset(28)
	copy(b.Extend(len(data)), data)
	udp := b.Push(8)
	binary.BigEndian.PutUint16(udp[0:], from.Port())
	binary.BigEndian.PutUint16(udp[2:], d.local.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(data)))
	binary.BigEndian.PutUint16(udp[6:], 0)
	ip := b.Push(20)
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(data)))
	binary.BigEndian.PutUint32(ip[4:], 0)
	ip[8], ip[9] = 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(ip[10:], 0)
	src, dst := from.Addr().As4(), d.local.Addr().As4()
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	r := d.e.Inbound(b)
	if r.Verdict != ipsec.VerdictForward {
		d.drops.Add(1)
		return errors.New(r.Reason.String())
	}
	d.in.Add(1)
	_, err := d.tun.Write(b.Bytes())
	return err
}
