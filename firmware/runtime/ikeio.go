package runtime

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ike"
)

// sendTimeout bounds one datagram write, so a wedged socket cannot stall
// the IKE goroutine that calls Send.
const sendTimeout = time.Second

// ikeSocket is one UDP socket of IKE on the gVisor stack: a black address
// on port 500 or 4500.
type ikeSocket struct {
	conn  net.PacketConn
	local netip.AddrPort
}

// openIKESockets binds UDP 500 and 4500 on every black address. The
// frame path only lets black traffic reach them, and UDP 4500 only with
// the non-ESP marker (ESP in UDP goes to the engine).
func (r *Runtime) openIKESockets() error {
	for _, p := range r.cfg.Black.Addresses {
		for _, port := range []uint16{ike.PortIKE, ike.PortNATT} {
			ap := netip.AddrPortFrom(p.Addr(), port)
			c, err := r.stack.ListenUDP(ap)
			if err != nil {
				for _, s := range r.sockets {
					s.conn.Close()
				}
				r.sockets = nil
				return fmt.Errorf("IKE socket %v: %w", ap, err)
			}
			r.sockets = append(r.sockets, ikeSocket{conn: c, local: ap})
			r.log.Info("IKE listening", "addr", ap)
		}
	}
	return nil
}

// readIKE hands every datagram of one socket to the IKE goroutine until
// the socket is closed. Deliver never blocks; a full queue is counted by
// the manager (ike.DropQueueFull).
func (r *Runtime) readIKE(s ikeSocket) {
	buf := make([]byte, maxIKEDatagram)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if r.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Warn("IKE socket read failed", "addr", s.local, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		remote := ua.AddrPort()
		r.ike.Deliver(append([]byte(nil), buf[:n]...), s.local, netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()))
	}
}

// Send implements ike.Sender over the socket bound to local (or, for an
// address IKE picked that is not bound exactly, the socket of the same
// port and family).
func (r *Runtime) Send(data []byte, local, remote netip.AddrPort) error {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	var sock *ikeSocket
	for i := range r.sockets {
		s := &r.sockets[i]
		if s.local == local {
			sock = s
			break
		}
		if sock == nil && s.local.Port() == local.Port() && s.local.Addr().Is4() == local.Addr().Is4() {
			sock = s
		}
	}
	if sock == nil {
		return fmt.Errorf("no IKE socket for %v", local)
	}
	sock.conn.SetWriteDeadline(time.Now().Add(sendTimeout))
	_, err := sock.conn.WriteTo(data, net.UDPAddrFromAddrPort(remote))
	return err
}
