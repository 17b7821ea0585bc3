//go:build tamago && arm && mx6ullevk

// Command qemuboot is the QEMU image of crypto/hw/imx6 (boot_test.go
// builds and boots it). It asks imx6.Engines for the SoC's engines, lets
// hw.Select self-test them, printing the console lines the firmware
// prints, runs one ESP-shaped round trip (encrypt, ICV, verify, decrypt)
// on the engine chosen, and powers off with status 0 when all of that
// worked, 1 otherwise. Under QEMU, which models neither the DCP nor the
// CAAM, it shows the fallback to the soft engine; on a real board it
// would exercise the hardware engine.
package main

import (
	"bytes"
	"fmt"

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"

	"github.com/bitw-dev/bitw/board/mx6ullevk"
	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/crypto/hw/imx6"
)

func main() {
	fmt.Printf("qemuboot: SoC %s, native %v\n", imx6ul.Model(), imx6ul.Native)
	e, err := hw.Select(imx6.Engines(), hw.Soft(), func(line string) { fmt.Println(line) })
	if err != nil {
		fmt.Printf("qemuboot: %v\n", err)
		mx6ullevk.Poweroff(1)
	}
	if err := roundTrip(e); err != nil {
		fmt.Printf("qemuboot: %s engine: round trip: %v\n", e.Name(), err)
		mx6ullevk.Poweroff(1)
	}
	fmt.Printf("qemuboot: %s engine: ESP round trip ok\n", e.Name())
	mx6ullevk.Poweroff(0)
}

func roundTrip(e hw.Engine) error {
	encKey, integKey := make([]byte, 16), make([]byte, hw.IntegKeyLen)
	for i := range integKey {
		integKey[i] = byte(i)
	}
	t, err := hw.NewESPCBC(e, encKey, integKey)
	if err != nil {
		return err
	}
	iv := make([]byte, hw.BlockSize)
	plain := bytes.Repeat([]byte("bitw"), 372) // 1488 octets
	p := bytes.Clone(plain)
	icv := make([]byte, hw.ICVLen)
	if err := t.Encrypt(p, iv); err != nil {
		return err
	}
	if bytes.Equal(p, plain) {
		return fmt.Errorf("encrypt left the plaintext")
	}
	if err := t.Sign(icv, p); err != nil {
		return err
	}
	if ok, err := t.Verify(icv, p); err != nil || !ok {
		return fmt.Errorf("own ICV not verified (%v)", err)
	}
	if err := t.Decrypt(p, iv); err != nil {
		return err
	}
	if !bytes.Equal(p, plain) {
		return fmt.Errorf("decrypt did not restore the plaintext")
	}
	return nil
}
