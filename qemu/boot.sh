#!/usr/bin/env bash
# Boots a bitw firmware image for the mx6ullevk board under QEMU's
# mcimx6ul-evk machine, with ENET1 on the TAP bitw-red inside RED_NETNS
# and ENET2 on the TAP bitw-black inside BLACK_NETNS.
#
#   qemu/boot.sh IMAGE.elf RED_NETNS BLACK_NETNS
#
# A TAP that exists is used as it is; one that does not is created (and
# brought up) for as long as QEMU runs. No address is ever assigned: the
# caller does that. QEMU runs in the foreground with the console (UART1)
# on stdio. The exit status is the firmware's, through semihosting;
# SIGTERM or SIGINT stop QEMU and the script ends with 128+signal.
# Set QEMU to use another qemu-system-arm binary. See qemu/README.md.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 IMAGE.elf RED_NETNS BLACK_NETNS" >&2
	exit 2
fi
image=$(realpath -- "$1")
red=$2
black=$3
root=$(cd "$(dirname "$0")/.." && pwd)
qemu=${QEMU:-qemu-system-arm}

if [ ! -f "$image" ]; then
	echo "boot.sh: no image at $1" >&2
	exit 2
fi
if ! command -v "$qemu" >/dev/null; then
	echo "boot.sh: $qemu not found (Debian package qemu-system-arm)" >&2
	exit 2
fi

# The helper that opens each TAP inside its namespace and hands the
# descriptors to QEMU is built with the host Go toolchain.
# It is built beside and renamed into place, so boots running at the same
# time never see a half-written binary.
helper=$root/build/tapqemu
mkdir -p "$root/build"
(cd "$root" && go build -o "$helper.$$" ./qemu/tapqemu)
mv -f "$helper.$$" "$helper"

# The QEMU line the TamaGo notes give for this machine; the helper appends
# -nic tap,fd=3,model=imx.enet (ENET1) and -nic tap,fd=4,... (ENET2).
exec "$helper" -red "$red" -black "$black" -- \
	"$qemu" -machine mcimx6ul-evk -cpu cortex-a7 -m 512M \
	-nographic -monitor none -semihosting \
	-serial stdio -serial null \
	-kernel "$image"
