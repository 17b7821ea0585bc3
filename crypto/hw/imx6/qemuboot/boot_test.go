//go:build !tamago

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQEMUFallsBackToSoft builds this image with the TamaGo compiler,
// boots it on QEMU's mcimx6ul-evk (an emulated i.MX6UL without a CAAM)
// and checks that the engine self-test fails safely, says so on the
// console, and that the soft engine then carries an ESP round trip.
// It runs when BITW_QEMU=1 and the compiler and QEMU are present, and
// says why it skips otherwise.
func TestQEMUFallsBackToSoft(t *testing.T) {
	if os.Getenv("BITW_QEMU") != "1" {
		t.Skip("SKIPPED: set BITW_QEMU=1 to build and boot the crypto/hw QEMU image")
	}
	if _, err := exec.LookPath("qemu-system-arm"); err != nil {
		t.Skip("SKIPPED: qemu-system-arm not found")
	}
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	tool, err := exec.Command("go", "tool", "-C", root, "-n", "github.com/usbarmory/tamago/cmd/tamago").Output()
	if err != nil {
		t.Skipf("SKIPPED: no TamaGo tool (go tool -n: %v)", err)
	}
	compiler, err := tamagoCompiler(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(compiler); err != nil {
		t.Skip("SKIPPED: TamaGo compiler not found at " + compiler)
	}

	image := filepath.Join(t.TempDir(), "qemuboot.elf")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, strings.TrimSpace(string(tool)), "build",
		"-tags", "mx6ullevk,linkramsize", "-trimpath",
		"-ldflags", "-T 0x80010000 -R 0x1000", "-o", image, "./crypto/hw/imx6/qemuboot")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=tamago", "GOOSPKG=github.com/usbarmory/tamago", "GOARM=7", "GOARCH=arm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the image: %v\n%s", err, out)
	}

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var console bytes.Buffer
	qemu := exec.CommandContext(ctx, "qemu-system-arm", "-machine", "mcimx6ul-evk", "-cpu", "cortex-a7", "-m", "512M",
		"-nographic", "-monitor", "none", "-semihosting", "-serial", "stdio", "-serial", "null", "-net", "none",
		"-kernel", image)
	qemu.Stdout, qemu.Stderr = &console, &console
	err = qemu.Run()
	t.Logf("console:\n%s", console.String())
	if err != nil {
		t.Fatalf("the image ended with %v (semihosting exit status 1 means a failed step)", err)
	}
	for _, want := range []string{
		"crypto: CAAM self-test failed: engine not present: emulated i.MX6UL: QEMU models no CAAM; using soft engine\n",
		"qemuboot: soft engine: ESP round trip ok\n",
	} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("no console line %q", strings.TrimSpace(want))
		}
	}
}

// tamagoCompiler is where cmd/tamago keeps the TamaGo go command for the
// tamago module version in go.mod.
func tamagoCompiler(root string) (string, error) {
	out, err := exec.Command("go", "list", "-C", root, "-m", "-f", "{{.Version}}", "github.com/usbarmory/tamago").Output()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	version := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	return filepath.Join(cache, "tamago-go", "tamago-go"+version, "bin", "go"), nil
}
