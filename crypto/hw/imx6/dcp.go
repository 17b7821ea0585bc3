//go:build tamago && arm

package imx6

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/usbarmory/tamago/soc/nxp/dcp"

	"github.com/bitw-dev/bitw/crypto/hw"
)

// dcpSlots is the number of AES key slots in the DCP's key RAM
// (i.MX6ULL reference manual, DCP_KEY; TamaGo's SetKey takes 0 to 3).
const dcpSlots = 4

// dcpDevice drives the DCP through TamaGo's driver. It owns all four
// key slots: keys are loaded on demand, the least recently loaded slot
// giving way, so any number of SAs share them (loading a key is four
// register writes).
type dcpDevice struct {
	dcp    *dcp.DCP
	slots  [dcpSlots]*cbcKey
	victim int
}

func newDCP(d *dcp.DCP) hw.Engine {
	d.Init()
	e, err := newEngine("DCP", hw.AES128CBC|hw.HMACSHA256, &dcpDevice{dcp: d})
	if err != nil {
		return hw.Absent("DCP", err.Error())
	}
	return e
}

func (d *dcpDevice) cbc(k *cbcKey, buf, iv []byte, encrypt bool) error {
	slot, err := d.load(k)
	if err != nil {
		return err
	}
	if encrypt {
		return d.dcp.Encrypt(buf, slot, iv)
	}
	return d.dcp.Decrypt(buf, slot, iv)
}

// load makes sure k sits in a key slot and returns it.
func (d *dcpDevice) load(k *cbcKey) (int, error) {
	if k.slot >= 0 && d.slots[k.slot] == k {
		return k.slot, nil
	}
	s := d.victim
	d.victim = (d.victim + 1) % dcpSlots
	d.slots[s] = nil
	if err := d.dcp.SetKey(s, k.key); err != nil {
		return 0, fmt.Errorf("loading key slot %d: %w", s, err)
	}
	d.slots[s], k.slot = k, s
	return s, nil
}

func (d *dcpDevice) sum256(buf []byte) ([sha256.Size]byte, error) {
	return d.dcp.Sum256(buf)
}

func (d *dcpDevice) random([]byte) error {
	return errors.ErrUnsupported
}
