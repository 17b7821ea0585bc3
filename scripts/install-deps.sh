#!/usr/bin/env bash
# Installs, idempotently and from Debian's packages, every tool the tests
# and the demo use: strongSwan (charon with kernel-libipsec) as the peer,
# scapy as an independent ESP/AH implementation, tshark/tcpdump to inspect
# the black link, iperf3 for traffic, nftables for NAT, QEMU for firmware.
set -euo pipefail

pkgs=(
	strongswan-charon strongswan-swanctl charon-systemd
	libstrongswan-standard-plugins libstrongswan-extra-plugins libcharon-extra-plugins
	python3-scapy tshark tcpdump iperf3 nftables iproute2 ethtool iputils-ping
	qemu-system-arm u-boot-tools
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Go modules come from the module proxy at the versions go.sum pins.
go mod download
echo "install-deps: ok"
