package ike

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"io"
	"net/netip"
)

// cookieJar makes and checks stateless COOKIEs (RFC 7296 §2.6):
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// The secret is replaced every CookieSecretLifetime; cookies made with the
// previous one stay valid for one more period, so an initiator that got a
// cookie just before a rotation still gets in.
type cookieJar struct {
	secrets [2][32]byte
	version uint8 // of secrets[0]
	t       timer
}

const cookieHashLen = 16

func (j *cookieJar) init(m *Manager) error {
	if _, err := io.ReadFull(m.rand, j.secrets[0][:]); err != nil {
		return err
	}
	j.t.init(timerCookieRotate, nil, nil)
	m.schedule(&j.t, m.cfg.CookieSecretLifetime)
	return nil
}

func (j *cookieJar) rotate(m *Manager) {
	j.secrets[1] = j.secrets[0]
	if _, err := io.ReadFull(m.rand, j.secrets[0][:]); err != nil {
		// Keep the old secret rather than stop answering.
		j.secrets[0] = j.secrets[1]
	}
	j.version++
	m.schedule(&j.t, m.cfg.CookieSecretLifetime)
}

func cookieHash(secret *[32]byte, ni []byte, ip netip.Addr, spii uint64) [sha256.Size]byte {
	h := sha256.New()
	h.Write(ni)
	a := ip.Unmap().AsSlice()
	h.Write(a)
	var spi [8]byte
	binary.BigEndian.PutUint64(spi[:], spii)
	h.Write(spi[:])
	h.Write(secret[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// make returns the COOKIE for an initiator's first request.
func (j *cookieJar) make(ni []byte, ip netip.Addr, spii uint64) []byte {
	h := cookieHash(&j.secrets[0], ni, ip, spii)
	return append([]byte{j.version}, h[:cookieHashLen]...)
}

// verify checks a returned COOKIE against the current and previous
// secret.
func (j *cookieJar) verify(c, ni []byte, ip netip.Addr, spii uint64) bool {
	if len(c) != 1+cookieHashLen {
		return false
	}
	var secret *[32]byte
	switch c[0] {
	case j.version:
		secret = &j.secrets[0]
	case j.version - 1:
		secret = &j.secrets[1]
	default:
		return false
	}
	h := cookieHash(secret, ni, ip, spii)
	return subtle.ConstantTimeCompare(c[1:], h[:cookieHashLen]) == 1
}
