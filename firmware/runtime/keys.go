package runtime

import (
	"errors"
	"log/slog"

	"github.com/bitw-dev/bitw/firmware/keylog"
	"github.com/bitw-dev/bitw/ike"
)

// keyHook writes every SA's keys to the save_keys directory, in the
// tables Wireshark reads. It runs on the IKE goroutine; the files are
// rewritten whole on each SA, which is acceptable for a debugging aid.
type keyHook struct {
	w   *keylog.Writer
	log *slog.Logger
}

func (h keyHook) IKEKeys(k ike.IKEKeyInfo) {
	err := h.w.AddIKE(keylog.IKESA{SPIi: k.SPIi, SPIr: k.SPIr, Suite: k.Suite, SKei: k.SKei, SKer: k.SKer, SKai: k.SKai, SKar: k.SKar})
	h.report(err, "conn", k.Conn, "ike", spi64String(k.SPIi)+"_i "+spi64String(k.SPIr)+"_r")
}

func (h keyHook) ChildKeys(k ike.ChildKeyInfo) {
	err := h.w.AddESP(keylog.ESPSA{Src: k.Src, Dst: k.Dst, SPI: k.SPI, Suite: k.Suite, EncKey: k.EncKey, IntegKey: k.IntegKey})
	h.report(err, "conn", k.Conn, "child", k.Child, "dir", k.Dir, "spi", spiString(k.SPI))
}

func (h keyHook) report(err error, args ...any) {
	switch {
	case err == nil:
		h.log.Debug("save_keys: keys written", args...)
	case errors.Is(err, keylog.ErrUnsupported):
		h.log.Warn("save_keys: Wireshark cannot decrypt this SA; listed as a comment", append(args, "err", err)...)
	default:
		h.log.Error("save_keys: writing keys failed", append(args, "err", err)...)
	}
}
