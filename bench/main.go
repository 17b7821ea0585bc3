// Command bench measures single-stream TCP throughput, ping round trip and
// CPU through the end-to-end topology (test/e2e/harness) with different
// gateways, and prints how bitw compares with strongSwan. scripts/bench.sh
// runs it as root; results go to bench/out/.
//
// Rows:
//
//	1  bitw <-> bitw
//	2  bitw <-> strongSwan
//	3  strongSwan <-> strongSwan (kernel-libipsec, ESP aes128gcm16)
//	4  plain routing: the gateways just forward, the ceiling
//
// A row is a function that sets up the two gateways of its kind on a
// fresh topology; measuring is the same for all rows. Default MTU and the
// kernel's default veth offloads throughout.
//
// Every tunnel row carries ESP in UDP (RFC 3948): strongSwan's
// kernel-libipsec always encapsulates (it claims a NAT), so the bitw
// gateways run with the documented encap = true to match (-encap=false
// gives raw ESP, protocol 50, on row 1). The ESP column shows what the
// Child SA used.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// errBitwUnavailable is what the bitw rows report when there is no bitw
// binary to run (BITW_BIN unset or not executable).
var errBitwUnavailable = errors.New("bitw binary not available")

// Proposals of the encrypted rows.
const (
	benchIKEProposal = "aes128gcm16-prfsha256-x25519"
	benchESPProposal = "aes128gcm16"
	benchPSK         = "bitw-bench-lab-psk-not-a-secret-0123456789"
)

// gatewayProc is a process whose CPU time a row reports.
type gatewayProc struct {
	name string
	pid  int
}

// gateways is what a row's setup started.
type gateways struct {
	procs []gatewayProc
	// tunnel, when set, returns the bytes gwA's tunnel has carried
	// towards gwB so far, the proof that the measured traffic was
	// encrypted rather than routed around the tunnel, and whether the
	// Child SA encapsulates ESP in UDP.
	tunnel func() (bytesOut uint64, encap bool, err error)
	// profilers fetch a CPU profile of d from each bitw gateway into
	// dir (with -pprof).
	profilers []func(dir string, d time.Duration) error
}

// row is one line of the table.
type row struct {
	id   int
	name string
	// a and b are the gateway kinds the topology prepares.
	a, b harness.GatewayKind
	// setup starts the gateways' software on the topology. errBitwUnavailable
	// skips the row; any other error fails it.
	setup func(r *runner, topo *harness.Topology) (gateways, error)
}

var rows = []row{
	{1, "bitw <-> bitw", harness.BitwGateway, harness.BitwGateway, setupBitwBitw},
	{2, "bitw <-> strongSwan", harness.BitwGateway, harness.StrongSwanGateway, setupBitwStrongSwan},
	{3, "strongSwan <-> strongSwan", harness.StrongSwanGateway, harness.StrongSwanGateway, setupStrongSwanStrongSwan},
	{4, "plain routing", harness.RouterGateway, harness.RouterGateway, setupRouting},
}

// setupBitwBitw runs bitw on both gateways; gwA initiates.
func setupBitwBitw(r *runner, topo *harness.Topology) (gateways, error) {
	b, err := startBitwGateway(r, topo.GwB, "none")
	if err != nil {
		return gateways{}, err
	}
	a, err := startBitwGateway(r, topo.GwA, "start")
	if err != nil {
		return gateways{}, err
	}
	if err := waitBitw(b); err != nil {
		return gateways{}, err
	}
	return gateways{procs: append(a.procs, b.procs...), tunnel: a.tunnel, profilers: append(a.profilers, b.profilers...)}, nil
}

// setupBitwStrongSwan runs bitw on gwA against strongSwan on gwB; bitw
// initiates.
func setupBitwStrongSwan(r *runner, topo *harness.Topology) (gateways, error) {
	s, b := startStrongSwanGateway(r, topo.GwB)
	a, err := startBitwGateway(r, topo.GwA, "start")
	if err != nil {
		return gateways{}, err
	}
	if _, _, err := s.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 10*time.Second); err != nil {
		return gateways{}, err
	}
	return gateways{procs: append(a.procs, b...), tunnel: a.tunnel, profilers: a.profilers}, nil
}

// bitwGateway is a running bitw and what the measurement needs of it.
type bitwGateway struct {
	gateways
	bitw *harness.Bitw
}

// startBitwGateway runs $BITW_BIN as gateway g: the harness gives g's
// namespace red0 and black0 without kernel addresses, g.BitwConfig
// writes a config from g's addresses with the proposals and PSK above,
// and harness.StartBitw runs it. With startAction "start" it waits for
// the tunnel. The process to measure is Bitw.Proc; the tunnel's bytes are
// bytes_out in Bitw.Status.
func startBitwGateway(r *runner, g *harness.Gateway, startAction string) (bitwGateway, error) {
	bin := os.Getenv(harness.EnvBitwBin)
	if st, err := os.Stat(bin); bin == "" || err != nil || st.Mode()&0o111 == 0 {
		return bitwGateway{}, fmt.Errorf("%w: %s=%q (make bitw builds build/bitw)", errBitwUnavailable, harness.EnvBitwBin, bin)
	}
	site := harness.BitwSite{
		Proposals:    []string{benchIKEProposal},
		ESPProposals: []string{benchESPProposal},
		PSK:          benchPSK,
		StartAction:  startAction,
		LogLevel:     "info",
	}
	if bitwEncap {
		site.ConnExtra = "encap = true"
	}
	files := g.BitwConfig(r, site)
	b := harness.StartBitw(r, bin, g, files)
	gw := bitwGateway{bitw: b, gateways: gateways{procs: []gatewayProc{{"bitw " + g.Name, b.Proc.Pid()}}}}
	gw.tunnel = func() (uint64, bool, error) {
		_, c, err := b.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 5*time.Second)
		return c.BytesOut, c.Encap, err
	}
	if os.Getenv(envPprof) != "" {
		gw.profilers = []func(string, time.Duration) error{func(dir string, d time.Duration) error {
			return fetchProfile(g.NS, filepath.Join(dir, "cpu-bitw-"+g.Name+".pprof"), d)
		}}
	}
	if startAction == "start" {
		if err := waitBitw(gw); err != nil {
			return gw, err
		}
	}
	return gw, nil
}

// bitwEncap is -encap: whether the bitw gateways force ESP in UDP.
var bitwEncap = true

// envPprof is the bitw runtime's switch for its profiler (firmware's
// run_linux.go): an address on the gateway namespace's loopback.
const envPprof = "BITW_PPROF"

// fetchProfile asks the bitw in ns for a CPU profile of d and writes it
// to out, with Python's standard library (always on Debian), since curl
// may be missing.
func fetchProfile(ns *harness.Netns, out string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", os.Getenv(envPprof), int(d.Seconds()))
	script := "import sys, urllib.request; open(sys.argv[2], 'wb').write(urllib.request.urlopen(sys.argv[1], timeout=120).read())"
	if b, err := ns.Exec(ctx, "/usr/bin/python3", "-c", script, url, out); err != nil {
		return fmt.Errorf("profile from %s: %v: %s", ns.Name, err, b)
	}
	return nil
}

// waitBitw waits until the gateway's Child SA is installed.
func waitBitw(g bitwGateway) error {
	_, _, err := g.bitw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
	return err
}

// setupStrongSwanStrongSwan runs charon with kernel-libipsec on both
// gateways; gwA initiates.
func setupStrongSwanStrongSwan(r *runner, topo *harness.Topology) (gateways, error) {
	a, procs := startStrongSwanGateway(r, topo.GwA)
	b, procsB := startStrongSwanGateway(r, topo.GwB)
	if err := a.Initiate(harness.DefaultChildName, 15*time.Second); err != nil {
		return gateways{}, err
	}
	for _, s := range []*harness.StrongSwan{a, b} {
		if _, _, err := s.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 10*time.Second); err != nil {
			return gateways{}, err
		}
	}
	tunnel := func() (uint64, bool, error) {
		_, child, err := a.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 5*time.Second)
		return child.BytesOut, child.Encap, err
	}
	return gateways{procs: append(procs, procsB...), tunnel: tunnel}, nil
}

// startStrongSwanGateway starts charon on g with the benchmark's
// proposals; it waits to be initiated or to be told to initiate.
func startStrongSwanGateway(r *runner, g *harness.Gateway) (*harness.StrongSwan, []gatewayProc) {
	site := harness.SiteToSite{
		Proposals:    []string{benchIKEProposal},
		ESPProposals: []string{benchESPProposal},
		PSK:          benchPSK,
	}
	s := harness.StartStrongSwan(r, g.NS, g.SwanctlConfig(site), nil)
	return s, []gatewayProc{{"charon " + g.Name, s.Proc.Pid()}}
}

// setupRouting starts nothing: the topology's router gateways forward.
func setupRouting(r *runner, topo *harness.Topology) (gateways, error) {
	return gateways{}, nil
}

func main() {
	duration := flag.Duration("duration", 10*time.Second, "iperf3 run time per row (whole seconds)")
	pings := flag.Int("pings", 20, "echo requests per row for the average round trip")
	outDir := flag.String("out", "bench/out", "directory for results and logs")
	only := flag.String("rows", "1,2,3,4", "comma-separated row numbers to run")
	verbose := flag.Bool("v", false, "print harness log lines")
	flag.BoolVar(&bitwEncap, "encap", true, "configure the bitw gateways with encap = true (ESP in UDP, like strongSwan's kernel-libipsec); false leaves bitw <-> bitw on raw ESP")
	pprof := flag.Bool("pprof", false, "collect CPU profiles of the bitw gateways during each bitw row's iperf3 run (into the row's directory; go tool pprof reads them)")
	flag.Parse()
	if *pprof {
		os.Setenv(envPprof, "127.0.0.1:6060")
	}

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (network namespaces)")
		os.Exit(2)
	}
	want := map[int]bool{}
	for _, f := range strings.Split(*only, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -rows %q: %v\n", *only, err)
			os.Exit(2)
		}
		want[n] = true
	}
	runDir := filepath.Join(*outDir, "run-"+time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	s := settings{duration: *duration, pings: *pings}
	fmt.Printf("bench: single-stream TCP iperf3 hostA -> hostB for %v, %d pings, per row; %d CPUs; logs in %s\n",
		s.duration, s.pings, runtime.NumCPU(), runDir)
	if bitwEncap {
		fmt.Println("bench: every tunnel row carries ESP in UDP 4500 (RFC 3948): strongSwan's kernel-libipsec always encapsulates, and the bitw gateways run with encap = true to match")
	} else {
		fmt.Println("bench: -encap=false: bitw <-> bitw carries raw ESP (protocol 50); the rows with strongSwan carry ESP in UDP 4500, which kernel-libipsec always uses")
	}

	var results []result
	for _, rw := range rows {
		if !want[rw.id] {
			continue
		}
		res := runRow(rw, runDir, s, *verbose)
		results = append(results, res)
		printProgress(os.Stdout, res)
	}

	var table strings.Builder
	writeTable(&table, results, s)
	fmt.Print("\n" + table.String())
	if err := os.WriteFile(filepath.Join(runDir, "results.txt"), []byte(table.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	if js, err := json.MarshalIndent(results, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(runDir, "results.json"), append(js, '\n'), 0o644)
	}
	fmt.Printf("results: %s\n", filepath.Join(runDir, "results.txt"))
	fmt.Println(rttLine(results))
	fmt.Println(ratioLine(results))
}

// runRow builds a topology for the row, sets up its gateways and measures.
// Whatever happens, the row's namespaces and processes are gone when it
// returns.
func runRow(rw row, runDir string, s settings, verbose bool) result {
	res := result{Row: rw.id, Name: rw.name}
	dir := filepath.Join(runDir, fmt.Sprintf("row%d", rw.id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	r := newRunner(fmt.Sprintf("row%d", rw.id), dir, verbose)
	stopOnSignal(r)
	defer func() {
		r.finish()
		stopOnSignal(nil)
	}()
	var skipped error
	err := r.protect(func() error {
		topo := harness.NewTopology(r, harness.Options{A: rw.a, B: rw.b})
		gws, err := rw.setup(r, topo)
		if errors.Is(err, errBitwUnavailable) {
			skipped = err
			return nil
		}
		if err != nil {
			return err
		}
		m, err := measure(r, topo, gws, s)
		m.Row, m.Name = rw.id, rw.name
		res = m
		return err
	})
	switch {
	case skipped != nil:
		res.Skipped = skipped.Error()
	case err != nil:
		res.Error = err.Error()
	}
	return res
}

func printProgress(w io.Writer, r result) {
	switch {
	case r.Skipped != "":
		fmt.Fprintf(w, "row %d %s: skipped: %s\n", r.Row, r.Name, r.Skipped)
	case r.Error != "":
		fmt.Fprintf(w, "row %d %s: FAILED: %s\n", r.Row, r.Name, r.Error)
	default:
		fmt.Fprintf(w, "row %d %s: %.0f Mbit/s, ping %.3f ms\n", r.Row, r.Name, r.ThroughputBps/1e6, r.PingAvgMsec)
	}
}

func writeTable(w io.Writer, results []result, s settings) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "row\tsetup\tESP\tMbit/s\tretrans\tping avg ms (%d)\tgateway CPU %% of a core\tsystem CPU %%\ttunnel/iperf bytes\tload avg before\n", s.pings)
	for _, r := range results {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(tw, "%d\t%s\t\tskipped: %s\t\t\t\t\t\t\n", r.Row, r.Name, r.Skipped)
		case r.Error != "":
			msg, _, _ := strings.Cut(r.Error, "\n")
			fmt.Fprintf(tw, "%d\t%s\t\tFAILED: %s\t\t\t\t\t\t\n", r.Row, r.Name, msg)
		default:
			var cpu []string
			for _, name := range sortedKeys(r.ProcCPU) {
				cpu = append(cpu, fmt.Sprintf("%s %.0f", name, r.ProcCPU[name]))
			}
			procs := strings.Join(cpu, ", ")
			if procs == "" {
				procs = "(kernel forwarding)"
			}
			share := "-"
			if r.TunnelShare > 0 {
				share = fmt.Sprintf("%.2f", r.TunnelShare)
			}
			esp := r.ESP
			if esp == "" {
				esp = "-"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f\t%d\t%.3f\t%s\t%.0f\t%s\t%.2f\n", r.Row, r.Name, esp, r.ThroughputBps/1e6, r.Retransmits,
				r.PingAvgMsec, procs, r.SystemCPU, share, r.LoadAvg)
		}
	}
	tw.Flush()
}

// rttLine says how much round-trip time the bitw gateways add over plain
// routing: ping through row 1 less ping through row 4.
func rttLine(results []result) string {
	const label = "ping RTT bitw<->bitw adds over plain routing"
	byRow := map[int]result{}
	for _, r := range results {
		byRow[r.Row] = r
	}
	b, okB := byRow[1]
	p, okP := byRow[4]
	if !okB || !okP || b.PingAvgMsec <= 0 || p.PingAvgMsec <= 0 {
		return label + ": not computed (rows 1 and 4 are needed)"
	}
	return fmt.Sprintf("%s: %+.3f ms (%.3f ms vs %.3f ms)", label, b.PingAvgMsec-p.PingAvgMsec, b.PingAvgMsec, p.PingAvgMsec)
}

// ratioLine is the output's last line: bitw <-> bitw throughput over
// strongSwan <-> strongSwan, or why there is none.
func ratioLine(results []result) string {
	const label = "bitw↔bitw / strongSwan↔strongSwan"
	byRow := map[int]result{}
	for _, r := range results {
		byRow[r.Row] = r
	}
	var missing []string
	for _, id := range []int{1, 3} {
		r, ok := byRow[id]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("row %d was not run", id))
		case r.Skipped != "":
			missing = append(missing, fmt.Sprintf("row %d (%s) skipped: %s", id, r.Name, r.Skipped))
		case r.Error != "" || r.ThroughputBps <= 0:
			missing = append(missing, fmt.Sprintf("row %d (%s) failed", id, r.Name))
		}
	}
	if len(missing) > 0 {
		return label + ": not computed: " + strings.Join(missing, "; ")
	}
	return fmt.Sprintf("%s = %.2f", label, byRow[1].ThroughputBps/byRow[3].ThroughputBps)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
