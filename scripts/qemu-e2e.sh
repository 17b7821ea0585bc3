#!/usr/bin/env bash
# The QEMU firmware suites (make qemu-e2e, part of make test): each builds
# a TamaGo image, boots it under qemu-system-arm on TAPs in network
# namespaces (qemu/boot.sh) and drives it from the host.
#
# Without the TamaGo compiler, or without root, it prints one
# "SKIPPED: <reason>" line and exits 0: a fresh machine has no compiler
# (qemu/README.md says how to get one).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(go list -m -f '{{.Version}}' github.com/usbarmory/tamago)
compiler=${XDG_CACHE_HOME:-$HOME/.cache}/tamago-go/tamago-go${version#v}/bin/go
if [ ! -x "$compiler" ]; then
	echo "SKIPPED: TamaGo compiler not found at $compiler; QEMU firmware tests not run"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIPPED: QEMU firmware tests need root (network namespaces, TAP devices); not run"
	exit 0
fi
if ! command -v qemu-system-arm >/dev/null; then
	echo "qemu-e2e: qemu-system-arm not found; scripts/install-deps.sh installs it" >&2
	exit 1
fi

# The firmware suite runs the host runtime as a peer: build it, unless
# BITW_BIN names one already.
if [ -z "${BITW_BIN:-}" ]; then
	mkdir -p build
	go build -o build/bitw ./firmware
	BITW_BIN=$PWD/build/bitw
fi
export BITW_BIN

# Each suite is "PACKAGE TEST-PATTERN". The board bring-up comes first:
# when the board layer cannot boot, ping and power off, nothing built on
# it can. Then the crypto engine self-test's fallback to Go's crypto on
# the emulated SoC, and the firmware itself, as gwA of design.md's topology,
# against strongSwan and against the host runtime (test/e2e/qemu).
suites=(
	"./test/qemu/ ^TestBringUp$"
	"./crypto/hw/imx6/qemuboot/ ^TestQEMUFallsBackToSoft$"
	"./test/e2e/qemu/ ^TestFirmware"
)

status=0
for suite in "${suites[@]}"; do
	read -r pkg pattern <<<"$suite"
	echo "== qemu-e2e: $pkg $pattern"
	if ! BITW_QEMU=1 go test -count=1 -timeout 30m -v -run "$pattern" "$pkg"; then
		echo "FAIL: qemu-e2e $pkg $pattern" >&2
		status=1
	fi
done
exit $status
