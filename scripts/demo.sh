#!/usr/bin/env bash
# The bitw demo (make demo): two sites joined by two bitw gateways in
# network namespaces, design.md's topology:
#
#   hostA 192.168.1.10 -- red0 [gw-a] black0 203.0.113.1 -- wire -- 203.0.113.2 black0 [gw-b] red0 -- hostB 192.168.2.10
#
# Each gateway runs `bitw run` with examples/site-a.toml or site-b.toml.
# The demo shows the tunnel's status, a ping and a short iperf3 from hostA
# to hostB through it, what the black link carries (tcpdump), the
# management server's metrics, and the status again with the counters.
# Everything it creates is torn down at the end, on Ctrl-C and on failure.
#
# Needs root and the tools scripts/install-deps.sh installs (iproute2,
# iputils-ping, iperf3, tcpdump). Every wait is bounded; the whole demo
# takes well under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bitw=$root/build/bitw

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces)" >&2
	exit 1
fi
for tool in ip ping iperf3 tcpdump timeout; do
	command -v "$tool" >/dev/null || {
		echo "demo: $tool not found; run scripts/install-deps.sh" >&2
		exit 1
	}
done
[ -x "$bitw" ] || {
	echo "demo: $bitw not built; run make demo" >&2
	exit 1
}

# Namespace names carry this run's PID, so a second demo or a test run
# never collides with this one.
p=bitw-demo-$$-
ha=${p}ha ga=${p}ga wire=${p}w gb=${p}gb hb=${p}hb
work=$(mktemp -d /tmp/bitw-demo.XXXXXX)
pids=()

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	step "tearing down"
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	# bitw deletes its SAs with the peer on SIGTERM; give it a moment.
	for _ in $(seq 50); do
		alive=0
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for ns in "$ha" "$ga" "$wire" "$gb" "$hb"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	if [ $rc -ne 0 ]; then
		echo "demo: FAILED (exit $rc); logs kept in $work" >&2
	else
		rm -rf "$work"
		note "namespaces removed; done"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

# run COMMAND...: runs a step's command in the background and waits for
# it, so that Ctrl-C reaches the traps at once (bash runs a trap only
# after a foreground command ends, and some tools ignore SIGINT).
run() {
	"$@" &
	local pid=$!
	pids+=("$pid")
	wait "$pid"
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then
			echo "demo: timed out after ${secs}s waiting for $what" >&2
			return 1
		fi
		sleep 0.2
	done
}

step "building the topology: five network namespaces (${p}*)"
for ns in "$ha" "$ga" "$wire" "$gb" "$hb"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	# No IPv6 link-local chatter on the demo links.
	ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6'
done
ip -n "$ha" link add eth0 type veth peer name red0 netns "$ga"
ip -n "$hb" link add eth0 type veth peer name red0 netns "$gb"
ip -n "$wire" link add gwa type veth peer name black0 netns "$ga"
ip -n "$wire" link add gwb type veth peer name black0 netns "$gb"
ip -n "$wire" link add br0 type bridge
for l in gwa gwb; do
	ip -n "$wire" link set "$l" master br0
	ip -n "$wire" link set "$l" up
done
ip -n "$wire" link set br0 up
for g in "$ga" "$gb"; do
	# bitw owns these links: up, and no kernel address on them.
	ip -n "$g" link set red0 up
	ip -n "$g" link set black0 up
done
ip -n "$ha" addr add 192.168.1.10/24 dev eth0
ip -n "$ha" link set eth0 up
ip -n "$ha" route add default via 192.168.1.1
ip -n "$hb" addr add 192.168.2.10/24 dev eth0
ip -n "$hb" link set eth0 up
ip -n "$hb" route add default via 192.168.2.1
note "hostA 192.168.1.10 -- [gw-a] 203.0.113.1 -- wire -- 203.0.113.2 [gw-b] -- hostB 192.168.2.10"

step "starting bitw on both gateways (examples/site-a.toml, examples/site-b.toml)"
for site in a b; do
	ns=${p}g$site
	ip netns exec "$ns" "$bitw" run -c "examples/site-$site.toml" >"$work/gw-$site.log" 2>&1 &
	pids+=($!)
done
for site in a b; do
	wait_for 15 "gw-$site to be ready (log: $work/gw-$site.log)" grep -q "^bitw: ready" "$work/gw-$site.log" || {
		tail -20 "$work/gw-$site.log" >&2
		exit 1
	}
	note "gw-$site: ready"
done

step "waiting for IKE to bring the tunnel up"
installed() { "$bitw" status --json -c "examples/site-$1.toml" | grep -q '"state":"INSTALLED"'; }
for site in a b; do
	wait_for 20 "the Child SA on gw-$site" installed "$site" || {
		tail -20 "$work/gw-$site.log" >&2
		exit 1
	}
done
note "Child SA installed on both sides"

step "bitw status on gw-a"
"$bitw" status -c examples/site-a.toml | sed 's/^/    /'

step "capturing the black link while hostA pings hostB through the tunnel"
ip netns exec "$wire" timeout 30 tcpdump -i gwa -n -U -w "$work/black.pcap" >"$work/tcpdump.log" 2>&1 &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
wait_for 5 "tcpdump to listen" grep -q "listening on" "$work/tcpdump.log"
run sh -c "ip netns exec $ha ping -n -c 5 -i 0.3 -W 2 192.168.2.10 | sed 's/^/    /'"
sleep 0.5
kill -INT "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true

step "what the black link carried: only ESP between the gateways (tcpdump)"
tcpdump -n -r "$work/black.pcap" 2>/dev/null | head -12 | sed 's/^/    /'
if tcpdump -n -r "$work/black.pcap" 2>/dev/null | grep -q '192\.168\.'; then
	echo "demo: red addresses in clear on the black link!" >&2
	exit 1
fi
note "no red address in clear: the pings crossed inside ESP"

step "a short iperf3 (3 s, TCP) from hostA to hostB through the tunnel"
ip netns exec "$hb" timeout 20 iperf3 -s -1 -B 192.168.2.10 >"$work/iperf3-server.log" 2>&1 &
pids+=($!)
wait_for 5 "the iperf3 server" ip netns exec "$hb" sh -c "ss -Htln 'sport = :5201' | grep -q 5201"
run sh -c "ip netns exec $ha timeout 20 iperf3 -c 192.168.2.10 -t 3 -f m | grep -E 'sender|receiver' | sed 's/^/    /'"

step "management server on gw-a's red address (GET /metrics, from hostA)"
ip netns exec "$ha" timeout 5 bash -c '
	exec 3<>/dev/tcp/192.168.1.1/8080
	printf "GET /metrics HTTP/1.0\r\nHost: 192.168.1.1\r\n\r\n" >&3
	cat <&3' >"$work/metrics.txt" || true
grep -E '^bitw_(sa_bytes_total|sa_packets_total|ike_exchanges_total|drops_total)' "$work/metrics.txt" | grep -v ' 0$' | sed 's/^/    /' ||
	note "(no answer from the management server)"

step "bitw status on gw-a, with the counters of what the tunnel carried"
"$bitw" status -c examples/site-a.toml | sed 's/^/    /'
