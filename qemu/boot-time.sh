#!/usr/bin/env bash
# Measures how long a firmware image takes under QEMU to print
# "bitw: ready" (IKE listening), in wall-clock time from the start of
# qemu-system-arm, over N boots (default 5), then powers it off through
# the console and checks the exit status.
#
#   qemu/boot-time.sh IMAGE.elf [N]
#
# Each boot gets two fresh network namespaces with the TAPs bitw-red and
# bitw-black (no peer, no address: IKE only has to listen). QEMU is run
# through build/tapqemu, as qemu/boot.sh does, but without boot.sh's
# build step in the timed part. Needs root. docs/performance.md
# reports its output.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 IMAGE.elf [N]" >&2
	exit 2
fi
image=$(realpath -- "$1")
boots=${2:-5}
qemu=${QEMU:-qemu-system-arm}
mkdir -p build
go build -o build/tapqemu ./qemu/tapqemu

red=bitw-boottime-red-$$
black=bitw-boottime-black-$$
cleanup() {
	ip netns delete "$red" 2>/dev/null || true
	ip netns delete "$black" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$red"
ip netns add "$black"

/usr/bin/python3 - "$image" "$boots" "$red" "$black" "$qemu" <<'EOF'
import os, subprocess, sys, time

image, boots, red, black, qemu = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
cmd = ["build/tapqemu", "-red", red, "-black", black, "--",
       qemu, "-machine", "mcimx6ul-evk", "-cpu", "cortex-a7", "-m", "512M",
       "-nographic", "-monitor", "none", "-semihosting", "-serial", "stdio", "-serial", "null",
       "-kernel", image]
ready = []
for i in range(boots):
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = main = None
    deadline = start + 60
    for raw in p.stdout:
        line = raw.decode(errors="replace").rstrip("\r\n")
        now = time.monotonic() - start
        if first is None and line.startswith("bitw: "):
            first = now
        if line.startswith("bitw: main "):
            main = line[len("bitw: main "):].split(" ")[0]
        if line == "bitw: ready":
            ready.append(now)
            print(f"boot {i+1}: first console line {first*1000:.0f} ms, guest reached main after {main}, "
                  f"bitw: ready {now*1000:.0f} ms after qemu-system-arm started", flush=True)
            break
        if time.monotonic() > deadline:
            p.kill()
            sys.exit(f"boot {i+1}: no ready line within 60 s")
    p.stdin.write(b"poweroff\r")
    p.stdin.flush()
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        sys.exit(f"boot {i+1}: QEMU still running 30 s after poweroff")
    if status != 0:
        sys.exit(f"boot {i+1}: QEMU exited with status {status} after poweroff, want 0")
ready.sort()
print(f"bitw: ready after {ready[0]*1000:.0f} / {ready[len(ready)//2]*1000:.0f} / {ready[-1]*1000:.0f} ms "
      f"(min / median / max of {len(ready)} boots), poweroff exit status 0 each time")
EOF
