#!/usr/bin/env bash
# Builds the bitw firmware for a board with a configuration built in:
#
#   scripts/firmware.sh BOARD [CONFIG]      (make firmware BOARD=... CONFIG=...)
#
# BOARD is mx6ullevk (NXP MCIMX6ULL-EVK, and QEMU's mcimx6ul-evk) or
# usbarmory (USB armory Mk II LAN). CONFIG defaults to examples/site-a.toml.
#
# Output, in build/ (or $BITW_FIRMWARE_OUT):
#   bitw-BOARD.elf   the image (QEMU boots it: qemu/boot.sh)
#   bitw-BOARD.imx   the i.MX boot image for USB download or an SD card,
#                    when mkimage (Debian package u-boot-tools) is installed
#
# The configuration and the files it names (certificates, keys) are staged
# in build/site-BOARD/ and embedded through a build overlay as the
# directory firmware/site/, which exists only in the build: nothing is
# written into firmware/. The firmware reads site/bitw.toml from it (see
# qemu/README.md). BITW_FIRMWARE_PKG builds another main package with the
# same line (the QEMU bring-up image uses ./test/qemu/bringup).
# BITW_FIRMWARE_OUT puts the image and its staging files in another
# directory than build/ (the QEMU end-to-end tests build one image per
# test there).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${BITW_FIRMWARE_OUT:-$root/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() {
	echo "firmware.sh: $*" >&2
	exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || {
	echo "usage: $0 BOARD [CONFIG]   (BOARD: mx6ullevk | usbarmory)" >&2
	exit 2
}
board=$1
config=${2:-examples/site-a.toml}
pkg=${BITW_FIRMWARE_PKG:-./firmware}

# Text start and RAM layout of the TamaGo build line; the boards' DCD
# files (DDR set-up for the boot ROM) come with the tamago module.
text_start=0x80010000
case $board in
mx6ullevk)
	tags=mx6ullevk,linkramsize
	dcd=board/nxp/mx6ullevk/imximage.cfg
	ports="enet1 enet2"
	;;
usbarmory)
	tags=usbarmory,linkramsize
	dcd=board/usbarmory/mk2/imximage.cfg
	ports="usb eth"
	;;
*)
	echo "firmware.sh: unknown board '$board' (mx6ullevk | usbarmory)" >&2
	exit 2
	;;
esac

# The TamaGo compiler: cmd/tamago runs it from the user cache, and would
# try to clone and build it when absent, which cannot work offline. Look
# first, and say so plainly.
version=$(go list -m -f '{{.Version}}' github.com/usbarmory/tamago)
compiler=${XDG_CACHE_HOME:-$HOME/.cache}/tamago-go/tamago-go${version#v}/bin/go
if [ ! -x "$compiler" ]; then
	die "TamaGo compiler not found at $compiler
  Firmware images need the TamaGo distribution of Go (tag tamago-go${version#v}),
  built from github.com/usbarmory/tamago-go and placed at that path."
fi
tamago=$(go tool -n github.com/usbarmory/tamago/cmd/tamago)

[ -f "$config" ] || die "no configuration file at $config"
config_dir=$(cd "$(dirname "$config")" && pwd)

# Stage the configuration as site/bitw.toml and every file it names,
# found as any string value that is the path of a file beside it.
site=$out/site-$board
rm -rf "$site"
mkdir -p "$site"
cp "$config" "$site/bitw.toml"
/usr/bin/python3 - "$config" "$config_dir" "$site" <<'EOF'
import os, shutil, sys, tomllib

config, base, site = sys.argv[1:]
with open(config, "rb") as f:
    doc = tomllib.load(f)

def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)

for s in sorted(set(strings(doc))):
    if not s or "\n" in s:
        continue
    path = os.path.join(base, s)
    if not os.path.isfile(path) or os.path.samefile(path, config):
        continue
    rel = os.path.normpath(s)
    if os.path.isabs(s) or rel.startswith(".."):
        sys.exit(f"firmware.sh: {config} names {s}: an image embeds only files beside its configuration")
    os.makedirs(os.path.dirname(os.path.join(site, rel)), exist_ok=True)
    shutil.copyfile(path, os.path.join(site, rel))
    print(f"firmware.sh: embedding {s}")
EOF
{
	echo "config: $config"
	echo "sha256: $(sha256sum <"$config" | cut -d' ' -f1)"
} >"$site/SOURCE"

# The boards know their ports by these names. A link that names none of
# them (red0 and black0 in a configuration written for the host runtime)
# gets the board's port for its role at boot, which the console reports
# (firmware/baremetal.MapLinks).
read -r default_red default_black <<<"$ports"
for role in red black; do
	link=$(/usr/bin/python3 -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)
print(doc.get("interfaces", {}).get(sys.argv[2], {}).get("link", ""))
' "$config" "$role")
	case " $ports " in
	*" $link "*) ;;
	*)
		default=$default_red
		[ "$role" = black ] && default=$default_black
		echo "firmware.sh: note: $config: interfaces.$role link \"$link\" is not a $board port ($ports); the firmware uses $default, the board's $role port" >&2
		;;
	esac
done

# Validate it on the host with the same parser, when the host CLI builds.
if go build -o "$out/bitw-check" ./firmware 2>/dev/null; then
	if ! "$out/bitw-check" check -c "$site/bitw.toml"; then
		die "$config does not pass 'bitw check' (see above)"
	fi
else
	echo "firmware.sh: warning: ./firmware does not build for the host; configuration not checked" >&2
fi

overlay=$out/overlay-$board.json
/usr/bin/python3 - "$site" "$root/firmware/site" "$overlay" <<'EOF'
import json, os, sys

site, target, out = sys.argv[1:]
replace = {}
for dirpath, _, files in os.walk(site):
    for name in files:
        src = os.path.join(dirpath, name)
        replace[os.path.join(target, os.path.relpath(src, site))] = src
with open(out, "w") as f:
    json.dump({"Replace": replace}, f, indent=1)
EOF

elf=$out/bitw-$board.elf
stamp=$(git describe --always --dirty 2>/dev/null || echo unknown)
# The board's wall clock starts from the build time (board/tamago/imx6):
# SOURCE_DATE_EPOCH when set, for reproducible builds, else the commit time.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
echo "firmware.sh: building ${elf#"$root"/} ($pkg, tags $tags)"
GOOS=tamago GOOSPKG=github.com/usbarmory/tamago GOARM=7 GOARCH=arm \
	"$tamago" build -tags "$tags" -trimpath -overlay "$overlay" \
	-ldflags "-T $text_start -R 0x1000 -X main.version=$stamp -X github.com/bitw-dev/bitw/board/tamago/imx6.buildEpoch=$epoch" \
	-o "$elf" "$pkg"

# The .imx boot image: the loadable bytes from the text start (with .bss
# as zeros, since nothing clears it before the runtime starts), behind an
# i.MX image vector table and the board's DCD, made by mkimage. mkimage
# records the text start as the entry point; the real one, from the ELF
# header, goes into the IVT's entry field (offset 4).
if ! command -v mkimage >/dev/null; then
	echo "firmware.sh: warning: mkimage not found (Debian package u-boot-tools): built ${elf#"$root"/} only, no .imx" >&2
	exit 0
fi
bin=$out/bitw-$board.bin
imx=$out/bitw-$board.imx
entry=$(/usr/bin/python3 - "$elf" "$bin" "$text_start" <<'EOF'
import struct, sys

elf, out, base = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
data = open(elf, "rb").read()
if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
    sys.exit("firmware.sh: not a 32-bit little-endian ELF: " + elf)
entry, phoff = struct.unpack_from("<I", data, 24)[0], struct.unpack_from("<I", data, 28)[0]
phentsize, phnum = struct.unpack_from("<HH", data, 42)
loads = []
for i in range(phnum):
    ptype, off, _, paddr, filesz, memsz = struct.unpack_from("<6I", data, phoff + i * phentsize)
    if ptype == 1:  # PT_LOAD
        loads.append((paddr, off, filesz, memsz))
end = max(p + m for p, _, _, m in loads)
image = bytearray(end - base)
for paddr, off, filesz, _ in loads:
    start = max(paddr, base)
    skip = start - paddr
    if filesz > skip:
        image[start - base:start - base + filesz - skip] = data[off + skip:off + filesz]
open(out, "wb").write(image)
print(entry)
EOF
)
tamago_dir=$(go list -m -f '{{.Dir}}' github.com/usbarmory/tamago)
mkimage -n "$tamago_dir/$dcd" -T imximage -e "$text_start" -d "$bin" "$imx" >/dev/null
/usr/bin/python3 -c '
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4)
    f.write(struct.pack("<I", int(sys.argv[2])))
' "$imx" "$entry"
rm -f "$bin"
echo "firmware.sh: built ${elf#"$root"/} and ${imx#"$root"/} (entry $(printf '%#x' "$entry"))"
