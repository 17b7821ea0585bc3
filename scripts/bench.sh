#!/usr/bin/env bash
# Benchmark rows through the end-to-end topology (make bench): single-stream
# TCP iperf3 hostA -> hostB, ping round trip and gateway CPU for
#   1 bitw <-> bitw, 2 bitw <-> strongSwan, 3 strongSwan <-> strongSwan
#   (kernel-libipsec, aes128gcm16), 4 plain routing (the ceiling).
# Every tunnel row carries ESP in UDP 4500: strongSwan's kernel-libipsec
# always encapsulates, and the bitw gateways run with encap = true to
# match (-encap=false leaves row 1 on raw ESP). The last output line
# compares rows 1 and 3. Results and logs go to bench/out/run-*/. Needs
# root; extra arguments go to the bench program (e.g. -duration 10s
# -pings 20 -rows 3,4 -pprof -v).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces)" >&2
	exit 1
fi
# The bitw rows take the binary from BITW_BIN, as the e2e tests do; by
# default the one built from this tree.
if [ -z "${BITW_BIN:-}" ]; then
	mkdir -p build
	go build -o build/bitw ./firmware
	export BITW_BIN=$PWD/build/bitw
fi
mkdir -p bench/out
go build -o bench/out/bench ./bench
exec bench/out/bench -out bench/out "$@"
