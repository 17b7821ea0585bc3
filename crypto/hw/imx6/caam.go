//go:build tamago && arm

package imx6

import (
	"crypto/sha256"

	"github.com/usbarmory/tamago/soc/nxp/caam"

	"github.com/bitw-dev/bitw/crypto/hw"
)

// caamDevice drives the CAAM through TamaGo's driver, which TamaGo has
// already initialised (it seeds crypto/rand from the CAAM TRNG at boot).
// A CAAM job carries its key, so there are no slots: the key is copied
// into a DMA buffer for each command.
type caamDevice struct {
	caam *caam.CAAM
	key  []byte // DMA: the current AES key
}

func newCAAM(c *caam.CAAM) hw.Engine {
	key, err := reserve(32)
	if err != nil {
		return hw.Absent("CAAM", err.Error())
	}
	e, err := newEngine("CAAM", hw.AES128CBC|hw.AES192CBC|hw.AES256CBC|hw.HMACSHA256|hw.Random, &caamDevice{caam: c, key: key})
	if err != nil {
		return hw.Absent("CAAM", err.Error())
	}
	return e
}

func (d *caamDevice) cbc(k *cbcKey, buf, iv []byte, encrypt bool) error {
	key := d.key[:len(k.key)]
	copy(key, k.key)
	if encrypt {
		return d.caam.Encrypt(buf, key, iv)
	}
	return d.caam.Decrypt(buf, key, iv)
}

func (d *caamDevice) sum256(buf []byte) ([sha256.Size]byte, error) {
	return d.caam.Sum256(buf)
}

// random reads the TRNG's entropy registers directly: slow (TamaGo seeds
// a DRBG from it for crypto/rand for that reason), meant for seeds and
// keys, not for per-packet IVs.
func (d *caamDevice) random(p []byte) error {
	d.caam.GetRandomData(p)
	return nil
}
