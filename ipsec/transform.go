package ipsec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	"github.com/bitw-dev/bitw/crypto/ccm"
	"github.com/bitw-dev/bitw/crypto/cmac"
	"github.com/bitw-dev/bitw/crypto/gmac"
	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/crypto/xcbc"
	"github.com/bitw-dev/bitw/ipsec/proposal"
	"golang.org/x/crypto/chacha20poly1305"
)

// scratch is per-packet working space that lives in the Buffer, so that
// nonces and AAD handed to crypto interfaces never escape to the heap.
type scratch [64]byte

const (
	scNonce = 0  // nonce, up to 12 octets
	scAAD   = 16 // ESN AAD: SPI, seq high, seq low
	scICV   = 32 // a received ICV, up to 32 octets
)

// cipherKind selects the ESP processing path. A switch on a small enum
// keeps the per-packet path free of interface chains: the only dynamic
// calls are into Go's own AEAD, block mode or hash.
type cipherKind uint8

const (
	kindAEAD cipherKind = iota // GCM-12/16, ChaCha20-Poly1305: a cipher.AEAD safe for concurrent use
	kindCCM                    // AES-CCM: one AEAD per work slot, since crypto/ccm keeps scratch state
	kindGCM8                   // GCM with an 8-octet ICV, which crypto/cipher does not offer
	kindGMAC                   // ENCR_NULL_AUTH_AES_GMAC (RFC 4543 §3)
	kindCBC                    // AES-CBC, 3DES-CBC with random IVs
	kindCTR                    // AES-CTR (RFC 3686), keystream in work slots
	kindNull                   // ENCR_NULL (RFC 2410)
)

// espCipher is the SA's ESP transform: one encryption algorithm and, for
// non-AEAD ones, one integrity algorithm. The SA owns IV generation:
// counter-based IVs equal the 64-bit sequence number, which never repeats
// under one key (RFC 4106 §3.1, RFC 4309 §3.1, RFC 3686 §3.1, RFC 7634
// §2); CBC IVs come from the engine's random source (RFC 3602 §2.2).
type espCipher struct {
	kind    cipherKind
	aead    cipher.AEAD
	gmac    *gmac.GMAC
	block   cipher.Block
	salt    [4]byte
	saltLen int
	ivLen   int
	align   int // padding boundary, RFC 4303 §2.4; for CBC the block size
	icvLen  int
	integ   *integrity // non-AEAD kinds
	work    *workPool  // CCM AEADs, CBC modes, CTR and GCM-8 scratch
	// tailSlack is the capacity seal needs past the packet: GCM-8 writes
	// the full tag before it is truncated.
	tailSlack int
	rand      io.Reader
	// offload is AES-CBC with HMAC-SHA2-256-128 on Config.Crypto; when
	// set, it replaces block, work and integ.
	offload *hw.ESPCBC
}

// Key-size errors name the algorithm so that an IKE bug is obvious.
var errKeyLen = errors.New("ipsec: key length does not match the transform")

func newESPCipher(s proposal.Suite, encKey, integKey []byte, rnd io.Reader, eng hw.Engine) (*espCipher, error) {
	info, ok := s.Encr.ID.Info()
	if !ok {
		return nil, fmt.Errorf("ipsec: unsupported encryption %s", s.Encr.ID)
	}
	if len(encKey) != s.Encr.ID.KeyLen(s.Encr.KeyBits) {
		return nil, fmt.Errorf("%w: %s wants %d octets, got %d", errKeyLen, s.Encr.ID, s.Encr.ID.KeyLen(s.Encr.KeyBits), len(encKey))
	}
	if info.Block < 4 || info.Block&(info.Block-1) != 0 {
		return nil, fmt.Errorf("ipsec: %s: padding boundary %d is not a power of two of at least 4", s.Encr.ID, info.Block)
	}
	c := &espCipher{saltLen: info.SaltLen, ivLen: info.IVLen, align: info.Block, icvLen: info.ICVLen, rand: rnd}
	key := encKey[:len(encKey)-info.SaltLen]
	copy(c.salt[:], encKey[len(key):])
	t, err := offloadESP(s, key, integKey, eng)
	if err != nil {
		return nil, err
	}
	if t != nil {
		c.kind, c.offload, c.icvLen = kindCBC, t, hw.ICVLen
		return c, nil
	}
	switch s.Encr.ID {
	case proposal.EncrNullAuthGMAC:
		c.kind = kindGMAC
		c.gmac, err = gmac.New(key, 12)
	case proposal.EncrAESGCM8, proposal.EncrAESGCM12, proposal.EncrAESGCM16:
		var b cipher.Block
		if b, err = aes.NewCipher(key); err != nil {
			return nil, err
		}
		switch {
		case info.ICVLen == 8:
			c.kind = kindGCM8
			c.aead, err = cipher.NewGCM(b)
			c.work = newWorkPool(nil)
			c.tailSlack = 8
		default:
			c.kind = kindAEAD
			c.aead, err = cipher.NewGCMWithTagSize(b, info.ICVLen)
		}
	case proposal.EncrAESCCM8, proposal.EncrAESCCM12, proposal.EncrAESCCM16:
		var b cipher.Block
		if b, err = aes.NewCipher(key); err != nil {
			return nil, err
		}
		// crypto/ccm keeps scratch state in the AEAD, so each work
		// slot gets its own for parallel packets.
		c.kind = kindCCM
		c.work = newWorkPool(func(w *workSlot) {
			if err == nil {
				w.aead, err = ccm.New(b, info.ICVLen, 3+8)
			}
		})
	case proposal.EncrChaCha20Poly13:
		c.kind = kindAEAD
		c.aead, err = chacha20poly1305.New(key)
	case proposal.EncrAESCBC, proposal.Encr3DES:
		if s.Encr.ID == proposal.EncrAESCBC {
			c.block, err = aes.NewCipher(key)
		} else {
			c.block, err = des.NewTripleDESCipher(key)
		}
		if err != nil {
			return nil, err
		}
		c.kind = kindCBC
		blk := c.block
		c.work = newWorkPool(func(w *workSlot) {
			zero := make([]byte, blk.BlockSize())
			w.cbcEnc = cipher.NewCBCEncrypter(blk, zero)
			w.cbcDec = cipher.NewCBCDecrypter(blk, zero)
		})
		if _, ok := c.work.slots[0].cbcEnc.(ivSetter); !ok {
			return nil, errors.New("ipsec: CBC mode without SetIV")
		}
		if _, ok := c.work.slots[0].cbcDec.(ivSetter); !ok {
			return nil, errors.New("ipsec: CBC mode without SetIV")
		}
	case proposal.EncrAESCTR:
		c.kind = kindCTR
		if c.block, err = aes.NewCipher(key); err != nil {
			return nil, err
		}
		c.work = newWorkPool(func(w *workSlot) { w.ctr = new(ctrScratch) })
	case proposal.EncrNull:
		c.kind = kindNull
	default:
		return nil, fmt.Errorf("ipsec: unsupported encryption %s", s.Encr.ID)
	}
	if err != nil {
		return nil, err
	}
	if !info.AEAD {
		if c.integ, err = newIntegrity(s.Integ, integKey); err != nil {
			return nil, err
		}
		c.icvLen = c.integ.icvLen
	} else if len(integKey) != 0 {
		return nil, fmt.Errorf("%w: %s takes no integrity key", errKeyLen, s.Encr.ID)
	}
	return c, nil
}

// offloadESP puts AES-CBC with HMAC-SHA2-256-128 on eng when there is
// an engine and it takes the key size; nil and no error means Go's crypto.
func offloadESP(s proposal.Suite, key, integKey []byte, eng hw.Engine) (*hw.ESPCBC, error) {
	if eng == nil || s.Encr.ID != proposal.EncrAESCBC || s.Integ != proposal.IntegHMACSHA256128 || len(integKey) != hw.IntegKeyLen {
		return nil, nil
	}
	t, err := hw.NewESPCBC(eng, key, integKey)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil, nil
	}
	return t, err
}

// ivSetter is implemented by crypto/cipher's CBC modes; reusing one mode
// per work slot keeps CBC free of per-packet allocations.
type ivSetter interface{ SetIV([]byte) }

// workSlot is per-operation mutable crypto state: hash.Hash and CBC modes
// are not safe for concurrent use, so each SA keeps a few of them and a
// packet borrows one.
type workSlot struct {
	mu     sync.Mutex
	mac    hash.Hash
	aead   cipher.AEAD
	cbcEnc cipher.BlockMode
	cbcDec cipher.BlockMode
	ctr    *ctrScratch // AES-CTR only
	sum    [64]byte
	buf    []byte
	_      [64]byte // keeps neighbouring slots off one cache line
}

type workPool struct {
	slots []workSlot
	mask  uint32
}

// newWorkPool makes one slot per possible concurrent caller, rounded up to
// a power of two, and lets init fill each.
func newWorkPool(init func(*workSlot)) *workPool {
	n := 1
	for n < runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	p := &workPool{slots: make([]workSlot, n), mask: uint32(n - 1)}
	if init != nil {
		for i := range p.slots {
			init(&p.slots[i])
		}
	}
	return p
}

// get borrows a slot, preferring a free one near hint; it blocks only when
// every slot is busy.
func (p *workPool) get(hint uint32) *workSlot {
	for i := uint32(0); i <= p.mask; i++ {
		s := &p.slots[(hint+i)&p.mask]
		if s.mu.TryLock() {
			return s
		}
	}
	s := &p.slots[hint&p.mask]
	s.mu.Lock()
	return s
}

func (s *workSlot) put() { s.mu.Unlock() }

// scratchBuf returns s.buf grown to at least n octets. Growth happens once
// per slot for the largest packet seen.
func (s *workSlot) scratchBuf(n int) []byte {
	if cap(s.buf) < n {
		s.buf = make([]byte, n+n/4)
	}
	return s.buf[:n]
}

// integrity is a MAC transform for ESP (non-AEAD) and AH.
type integrity struct {
	id     proposal.IntegID
	icvLen int
	work   *workPool  // HMAC, XCBC, CMAC state; AH save space
	gmac   *gmac.GMAC // AUTH_AES_*_GMAC
	salt   [4]byte
}

func newIntegrity(id proposal.IntegID, key []byte) (*integrity, error) {
	info, ok := id.Info()
	if !ok {
		return nil, fmt.Errorf("ipsec: unsupported integrity %s", id)
	}
	if len(key) != info.KeyLen {
		return nil, fmt.Errorf("%w: %s wants %d octets, got %d", errKeyLen, id, info.KeyLen, len(key))
	}
	in := &integrity{id: id, icvLen: info.ICVLen}
	var newMAC func() (hash.Hash, error)
	switch id {
	case proposal.IntegHMACSHA196:
		newMAC = func() (hash.Hash, error) { return hmac.New(sha1.New, key), nil }
	case proposal.IntegHMACSHA256128:
		newMAC = func() (hash.Hash, error) { return hmac.New(sha256.New, key), nil }
	case proposal.IntegHMACSHA384192:
		newMAC = func() (hash.Hash, error) { return hmac.New(sha512.New384, key), nil }
	case proposal.IntegHMACSHA512256:
		newMAC = func() (hash.Hash, error) { return hmac.New(sha512.New, key), nil }
	case proposal.IntegAESXCBC96:
		newMAC = func() (hash.Hash, error) { return xcbc.New(key) }
	case proposal.IntegAESCMAC96:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		newMAC = func() (hash.Hash, error) { return cmac.New(b) }
	case proposal.IntegAES128GMAC, proposal.IntegAES192GMAC, proposal.IntegAES256GMAC:
		var err error
		if in.gmac, err = gmac.New(key[:len(key)-4], 12); err != nil {
			return nil, err
		}
		copy(in.salt[:], key[len(key)-4:])
		in.work = newWorkPool(nil) // AH header save space only
		return in, nil
	default:
		return nil, fmt.Errorf("ipsec: unsupported integrity %s", id)
	}
	var err error
	in.work = newWorkPool(func(w *workSlot) {
		if err == nil {
			w.mac, err = newMAC()
		}
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// compute writes the truncated MAC of data into out (icvLen octets).
func (in *integrity) compute(out, data []byte, hint uint32) {
	w := in.work.get(hint)
	w.mac.Reset()
	w.mac.Write(data)
	sum := w.mac.Sum(w.sum[:0])
	copy(out[:in.icvLen], sum)
	w.put()
}

// verify reports in constant time whether icv is the MAC of data.
func (in *integrity) verify(icv, data []byte, hint uint32) bool {
	w := in.work.get(hint)
	w.mac.Reset()
	w.mac.Write(data)
	sum := w.mac.Sum(w.sum[:0])
	ok := subtle.ConstantTimeCompare(sum[:in.icvLen], icv[:in.icvLen]) == 1
	w.put()
	return ok
}

// nonce assembles salt || IV in the scratch area.
func (c *espCipher) nonce(sc *scratch, iv []byte) []byte {
	if c.saltLen == 4 && len(iv) == 8 {
		// The common shape (GCM, GMAC, ChaCha20, CTR), as two stores.
		*(*[4]byte)(sc[scNonce:]) = c.salt
		*(*[8]byte)(sc[scNonce+4:]) = [8]byte(iv)
		return sc[scNonce : scNonce+12]
	}
	n := copy(sc[scNonce:], c.salt[:c.saltLen])
	n += copy(sc[scNonce+n:], iv)
	return sc[scNonce : scNonce+n]
}

// aad returns the AEAD additional data: SPI and sequence number in place,
// or, with ESN, SPI || seq high || seq low (RFC 4106 §5, RFC 4309 §5,
// RFC 7634 §2.1) in the scratch area.
func aad(esp []byte, seq uint64, esn bool, sc *scratch) []byte {
	if !esn {
		return esp[:espHeaderLen]
	}
	copy(sc[scAAD:], esp[:4])
	binary.BigEndian.PutUint64(sc[scAAD+4:], seq)
	return sc[scAAD : scAAD+12]
}

// writeIV fills the packet's IV field for sequence number seq.
func (c *espCipher) writeIV(iv []byte, seq uint64) error {
	switch c.kind {
	case kindNull:
		return nil
	case kindCBC:
		_, err := io.ReadFull(c.rand, iv)
		return err
	}
	binary.BigEndian.PutUint64(iv, seq)
	return nil
}

// seal encrypts and authenticates the ESP packet w[off:] in place. The
// packet holds the ESP header, the IV (already written), the plaintext
// (payload, padding, pad length, next header) and icvLen octets for the
// ICV. w[:off] must hold at least 4 octets the GMAC ESN path may borrow
// and then restores. GCM-8 needs 8 octets of capacity past the packet.
// It reports false when a crypto engine failed; the packet must then be
// dropped, since it may hold anything, plaintext included.
func (c *espCipher) seal(w []byte, off int, seq uint64, esn bool, sc *scratch) bool {
	if c.kind != kindAEAD {
		return c.sealOther(w, off, seq, esn, sc)
	}
	// The hot path (GCM-12/16, ChaCha20-Poly1305), kept small.
	esp := w[off:]
	ivEnd := espHeaderLen + c.ivLen
	p := esp[ivEnd : len(esp)-c.icvLen]
	c.aead.Seal(p[:0], c.nonce(sc, esp[espHeaderLen:ivEnd]), p, aad(esp, seq, esn, sc))
	return true
}

// sealOther is seal for every kind but kindAEAD.
func (c *espCipher) sealOther(w []byte, off int, seq uint64, esn bool, sc *scratch) bool {
	esp := w[off:]
	ivEnd := espHeaderLen + c.ivLen
	icvOff := len(esp) - c.icvLen
	iv := esp[espHeaderLen:ivEnd]
	switch c.kind {
	case kindCCM, kindGCM8:
		c.sealAEAD(esp[ivEnd:icvOff], iv, aad(esp, seq, esn, sc), sc, uint32(seq))
	case kindGMAC:
		var saved [8]byte
		data := gmacData(w, off, icvOff, seq, esn, &saved)
		c.gmac.Tag(esp[icvOff:icvOff], c.nonce(sc, iv), data)
		gmacRestore(w, off, esn, &saved)
	default:
		if c.offload != nil {
			return c.sealOffload(esp, ivEnd, icvOff, seq, esn)
		}
		c.encrypt(esp[ivEnd:icvOff], iv, uint32(seq))
		c.authenticate(esp, icvOff, seq, esn)
	}
	return true
}

// open verifies and decrypts the ESP packet w[off:] in place; on success
// (DropNone) the plaintext lies between the IV and the ICV. It fails with
// DropAuth, or DropCrypto when a crypto engine failed.
func (c *espCipher) open(w []byte, off int, seq uint64, esn bool, sc *scratch) DropReason {
	if c.kind != kindAEAD {
		return c.openOther(w, off, seq, esn, sc)
	}
	esp := w[off:]
	ivEnd := espHeaderLen + c.ivLen
	ct := esp[ivEnd:]
	if _, err := c.aead.Open(ct[:0], c.nonce(sc, esp[espHeaderLen:ivEnd]), ct, aad(esp, seq, esn, sc)); err != nil {
		return DropAuth
	}
	return DropNone
}

// authentic maps a verification result to open's reason.
func authentic(ok bool) DropReason {
	if ok {
		return DropNone
	}
	return DropAuth
}

// openOther is open for every kind but kindAEAD.
func (c *espCipher) openOther(w []byte, off int, seq uint64, esn bool, sc *scratch) DropReason {
	esp := w[off:]
	ivEnd := espHeaderLen + c.ivLen
	icvOff := len(esp) - c.icvLen
	iv := esp[espHeaderLen:ivEnd]
	switch c.kind {
	case kindCCM, kindGCM8:
		return authentic(c.openAEAD(esp[ivEnd:], iv, aad(esp, seq, esn, sc), sc, uint32(seq)))
	case kindGMAC:
		var saved [8]byte
		data := gmacData(w, off, icvOff, seq, esn, &saved)
		ok := c.gmac.Verify(c.nonce(sc, iv), data, esp[icvOff:])
		gmacRestore(w, off, esn, &saved)
		return authentic(ok)
	}
	if c.offload != nil {
		return c.openOffload(esp, ivEnd, icvOff, seq, esn, sc)
	}
	if !c.verify(esp, icvOff, seq, esn, sc) {
		return DropAuth
	}
	if c.kind == kindCBC && (icvOff-ivEnd)%c.align != 0 {
		return DropAuth
	}
	c.decrypt(esp[ivEnd:icvOff], iv, uint32(seq))
	return DropNone
}

// sealOffload is sealOther's encrypt and authenticate on Config.Crypto,
// the same steps with the same ESN handling, each of which the engine
// may fail.
func (c *espCipher) sealOffload(esp []byte, ivEnd, icvOff int, seq uint64, esn bool) bool {
	if c.offload.Encrypt(esp[ivEnd:icvOff], esp[espHeaderLen:ivEnd]) != nil {
		return false
	}
	end := icvOff
	if esn {
		binary.BigEndian.PutUint32(esp[icvOff:], uint32(seq>>32))
		end += 4
	}
	return c.offload.Sign(esp[icvOff:], esp[:end]) == nil
}

// openOffload is openOther's verify and decrypt on Config.Crypto, with
// verify's ESN handling: the received ICV waits in the scratch area
// while the high sequence half occupies its field.
func (c *espCipher) openOffload(esp []byte, ivEnd, icvOff int, seq uint64, esn bool, sc *scratch) DropReason {
	icv, data := esp[icvOff:], esp[:icvOff]
	if esn {
		copy(sc[scICV:], icv)
		binary.BigEndian.PutUint32(esp[icvOff:], uint32(seq>>32))
		icv, data = sc[scICV:scICV+c.icvLen], esp[:icvOff+4]
	}
	ok, err := c.offload.Verify(icv, data)
	if esn {
		copy(esp[icvOff:], sc[scICV:scICV+c.icvLen])
	}
	switch {
	case err != nil:
		return DropCrypto
	case !ok || (icvOff-ivEnd)%c.align != 0:
		return DropAuth
	}
	if c.offload.Decrypt(esp[ivEnd:icvOff], esp[espHeaderLen:ivEnd]) != nil {
		return DropCrypto
	}
	return DropNone
}

// sealAEAD encrypts p in place under the nonce salt || iv with additional
// data ad and appends the ICV; p needs icvLen+tailSlack octets of spare
// capacity. hint spreads concurrent packets over work slots.
func (c *espCipher) sealAEAD(p, iv, ad []byte, sc *scratch, hint uint32) {
	nonce := c.nonce(sc, iv)
	if c.kind == kindCCM {
		w := c.work.get(hint)
		w.aead.Seal(p[:0], nonce, p, ad)
		w.put()
		return
	}
	// GCM-8 seals with the full 16-octet tag and keeps its first 8
	// octets, which is GCM's tag truncation (NIST SP 800-38D §5.2.1.2).
	c.aead.Seal(p[:0], nonce, p, ad)
}

// openAEAD verifies and decrypts ct, the ciphertext followed by the ICV,
// in place.
func (c *espCipher) openAEAD(ct, iv, ad []byte, sc *scratch, hint uint32) bool {
	nonce := c.nonce(sc, iv)
	switch c.kind {
	case kindCCM:
		w := c.work.get(hint)
		_, err := w.aead.Open(ct[:0], nonce, ct, ad)
		w.put()
		return err == nil
	case kindGCM8:
		return c.openGCM8(ct, nonce, ad, hint)
	}
	_, err := c.aead.Open(ct[:0], nonce, ct, ad)
	return err == nil
}

// openGCM8 opens GCM with an 8-octet ICV using only crypto/cipher's GCM:
// sealing the ciphertext under the same nonce yields the plaintext (GCM
// encryption is an XOR with the key stream), and sealing that plaintext
// again yields the full tag for the received ciphertext, whose first 8
// octets must match. The work happens in a slot's scratch buffer so the
// packet stays untouched until the tag checks.
func (c *espCipher) openGCM8(ct, nonce, ad []byte, hint uint32) bool {
	if len(ct) < 8 {
		return false
	}
	icv := ct[len(ct)-8:]
	ct = ct[:len(ct)-8]
	w := c.work.get(hint)
	buf := w.scratchBuf(2 * (len(ct) + 16))
	pt := c.aead.Seal(buf[:0], nonce, ct, ad)[:len(ct)]
	full := c.aead.Seal(buf[len(ct)+16:len(ct)+16], nonce, pt, ad)
	ok := subtle.ConstantTimeCompare(full[len(ct):len(ct)+8], icv) == 1
	if ok {
		copy(ct, pt)
	}
	w.put()
	return ok
}

// gmacData returns the ENCR_NULL_AUTH_AES_GMAC authenticated data: the
// ESP packet up to the ICV, IV included (RFC 4543 §3.3). With ESN the high
// half of the sequence number belongs between SPI and low half, so the SPI
// is copied four octets to the front and the high half written over it;
// the caller restores the eight octets from saved with gmacRestore.
func gmacData(w []byte, off, icvOff int, seq uint64, esn bool, saved *[8]byte) []byte {
	esp := w[off:]
	if !esn {
		return esp[:icvOff]
	}
	copy(saved[:], w[off-4:off+4])
	copy(w[off-4:], esp[:4])
	binary.BigEndian.PutUint32(w[off:], uint32(seq>>32))
	return w[off-4 : off+icvOff]
}

func gmacRestore(w []byte, off int, esn bool, saved *[8]byte) {
	if esn {
		copy(w[off-4:], saved[:])
	}
}

// authenticate writes the ICV of a non-AEAD ESP packet: the MAC over
// header, IV and ciphertext, followed for ESN by the implicit high half
// of the sequence number (RFC 4303 §2.2.1), which is placed in the ICV
// field while it is computed.
func (c *espCipher) authenticate(esp []byte, icvOff int, seq uint64, esn bool) {
	end := icvOff
	if esn {
		binary.BigEndian.PutUint32(esp[icvOff:], uint32(seq>>32))
		end += 4
	}
	c.integ.compute(esp[icvOff:], esp[:end], uint32(seq))
}

func (c *espCipher) verify(esp []byte, icvOff int, seq uint64, esn bool, sc *scratch) bool {
	if !esn {
		return c.integ.verify(esp[icvOff:], esp[:icvOff], uint32(seq))
	}
	copy(sc[scICV:], esp[icvOff:])
	binary.BigEndian.PutUint32(esp[icvOff:], uint32(seq>>32))
	ok := c.integ.verify(sc[scICV:], esp[:icvOff+4], uint32(seq))
	copy(esp[icvOff:], sc[scICV:scICV+c.icvLen])
	return ok
}

func (c *espCipher) encrypt(p, iv []byte, hint uint32) {
	switch c.kind {
	case kindCBC:
		w := c.work.get(hint)
		w.cbcEnc.(ivSetter).SetIV(iv)
		w.cbcEnc.CryptBlocks(p, p)
		w.put()
	case kindCTR:
		c.xorCTR(p, iv, hint)
	}
}

func (c *espCipher) decrypt(p, iv []byte, hint uint32) {
	switch c.kind {
	case kindCBC:
		w := c.work.get(hint)
		w.cbcDec.(ivSetter).SetIV(iv)
		w.cbcDec.CryptBlocks(p, p)
		w.put()
	case kindCTR:
		c.xorCTR(p, iv, hint)
	}
}
