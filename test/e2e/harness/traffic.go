package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PingResult summarises one ping run.
type PingResult struct {
	Transmitted, Received int
	// Loss is the fraction of echo requests that got no reply, 0..1.
	Loss float64
	// AvgRTT is ping's average round trip over the replies (0 without any).
	AvgRTT time.Duration
	Output string
}

var (
	pingCounts = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)
	pingRTT    = regexp.MustCompile(`= ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms`)
)

// Ping asks for count echo replies from dst, sending a request every
// interval until they have arrived or the deadline (count*interval + 2 s)
// has passed, so Transmitted can exceed count when requests are lost.
// Loss is a result, not an error; an error means ping could not run or
// its output was not understood.
func (n *Netns) Ping(dst netip.Addr, count int, interval time.Duration) (PingResult, error) {
	if count <= 0 {
		count = 1
	}
	if interval < 10*time.Millisecond {
		interval = 10 * time.Millisecond
	}
	deadline := time.Duration(count)*interval + 2*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline+5*time.Second)
	defer cancel()
	args := []string{"ping", "-n", "-q",
		"-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64),
		"-W", "1",
		"-w", strconv.Itoa(int(deadline.Seconds() + 1)),
		dst.String()}
	out, err := n.Exec(ctx, args...)
	r, perr := parsePing(string(out))
	if perr != nil {
		if err != nil {
			return r, fmt.Errorf("[%s] %s: %v: %w", n.Name, strings.Join(args, " "), err, perr)
		}
		return r, fmt.Errorf("[%s] %s: %w", n.Name, strings.Join(args, " "), perr)
	}
	return r, nil
}

func parsePing(out string) (PingResult, error) {
	r := PingResult{Output: out}
	m := pingCounts.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no ping summary in output:\n%s", out)
	}
	r.Transmitted, _ = strconv.Atoi(m[1])
	r.Received, _ = strconv.Atoi(m[2])
	if r.Transmitted > 0 {
		r.Loss = 1 - float64(r.Received)/float64(r.Transmitted)
	}
	if m := pingRTT.FindStringSubmatch(out); m != nil {
		avg, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			r.AvgRTT = time.Duration(avg * float64(time.Millisecond))
		}
	}
	return r, nil
}

// MustPing pings and fails the test unless count replies came back before
// the deadline. Ping sends further requests in place of lost ones (its -w
// mode), so a lost packet on a loaded machine costs time, not the test;
// the loss is logged. Tests that must see no loss at all check
// Ping's result themselves.
func (n *Netns) MustPing(t T, dst netip.Addr, count int) PingResult {
	t.Helper()
	r, err := n.Ping(dst, count, 200*time.Millisecond)
	if err != nil {
		t.Fatalf("ping %s: %v", dst, err)
	}
	if r.Received < count {
		t.Fatalf("[%s] ping %s: %d of %d replies\n%s", n.Name, dst, r.Received, r.Transmitted, r.Output)
	}
	if r.Transmitted > r.Received {
		t.Logf("[%s] ping %s: %d of %d requests unanswered (machine load %s)", n.Name, dst, r.Transmitted-r.Received, r.Transmitted, loadavg())
	}
	return r
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// IperfOptions configure one iperf3 run.
type IperfOptions struct {
	Duration time.Duration // -t; default 2 s (with Bytes: the bound on the run, default 60 s)
	Port     int           // default 5201
	Reverse  bool          // -R: the server sends
	Streams  int           // -P; default 1
	UDP      bool          // -u
	Bitrate  string        // -b, e.g. "100M"; iperf3's default if empty
	MSS      int           // -M
	// Bytes, when set, sends that many bytes (-n) instead of running for
	// Duration: a transfer bounded by size, for slow paths such as an
	// emulated gateway.
	Bytes uint64
}

// IperfResult is what iperf3's JSON says about a run.
type IperfResult struct {
	// ReceivedBps is the goodput the receiver measured, in bits/s.
	ReceivedBps float64
	// SentBps is what the sender pushed, in bits/s.
	SentBps float64
	// SentBytes is the TCP payload the sender pushed (UDP: datagrams).
	SentBytes uint64
	// ReceivedBytes is the TCP payload the receiver got. With Bytes set
	// it can fall short of SentBytes: iperf3 ends the test once the
	// sender has handed its last byte to the socket.
	ReceivedBytes uint64
	Retransmits   int
	// LostPercent is the UDP loss; 0 for TCP.
	LostPercent float64
	// CPU utilisation that iperf3 reports for its own processes, percent.
	ClientCPU, ServerCPU float64
	JSON                 []byte
}

type iperfJSON struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Bytes         uint64  `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         uint64  `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		Sum struct {
			Bytes         uint64  `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			LostPercent   float64 `json:"lost_percent"`
		} `json:"sum"`
		CPU struct {
			HostTotal   float64 `json:"host_total"`
			RemoteTotal float64 `json:"remote_total"`
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
}

// Iperf3 runs a one-off iperf3 server in server bound to serverAddr and a
// client in client, and returns the parsed result. Both are bounded: the
// client by Duration + 20 s, the server by Stop.
func Iperf3(t T, client, server *Netns, serverAddr netip.Addr, opts IperfOptions) (IperfResult, error) {
	t.Helper()
	switch {
	case opts.Duration > 0:
	case opts.Bytes > 0:
		opts.Duration = 60 * time.Second
	default:
		opts.Duration = 2 * time.Second
	}
	if opts.Port == 0 {
		opts.Port = 5201
	}
	port := strconv.Itoa(opts.Port)
	srv := server.Start(t, "iperf3-server-"+port, "iperf3", "-s", "-1", "-B", serverAddr.String(), "-p", port)
	defer srv.Stop()
	listening := fmt.Sprintf("sport = :%d", opts.Port)
	if err := WaitFor(5*time.Second, "iperf3 server to listen", func() (bool, error) {
		if !srv.Running() {
			return false, fmt.Errorf("%w: iperf3 server exited: %s", ErrStopWaiting, srv.Tail(5))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := server.Exec(ctx, "ss", "-Htln", listening)
		return err == nil && strings.Contains(string(out), ":"+port), err
	}); err != nil {
		return IperfResult{}, err
	}

	secs := int((opts.Duration + time.Second - 1) / time.Second)
	args := []string{"iperf3", "-c", serverAddr.String(), "-p", port, "-J", "--connect-timeout", "3000"}
	if opts.Bytes > 0 {
		args = append(args, "-n", strconv.FormatUint(opts.Bytes, 10))
	} else {
		args = append(args, "-t", strconv.Itoa(secs))
	}
	if opts.Reverse {
		args = append(args, "-R")
	}
	if opts.Streams > 1 {
		args = append(args, "-P", strconv.Itoa(opts.Streams))
	}
	if opts.UDP {
		args = append(args, "-u")
	}
	if opts.Bitrate != "" {
		args = append(args, "-b", opts.Bitrate)
	}
	if opts.MSS > 0 {
		args = append(args, "-M", strconv.Itoa(opts.MSS))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+20*time.Second)
	defer cancel()
	cmd := client.Command(ctx, nil, args...)
	out, runErr := cmd.Output()
	r, err := parseIperf(out)
	if err != nil {
		if runErr != nil {
			return r, fmt.Errorf("[%s] %s: %v: %w", client.Name, strings.Join(args, " "), runErr, err)
		}
		return r, fmt.Errorf("[%s] %s: %w", client.Name, strings.Join(args, " "), err)
	}
	return r, nil
}

func parseIperf(out []byte) (IperfResult, error) {
	r := IperfResult{JSON: out}
	var j iperfJSON
	if err := json.Unmarshal(out, &j); err != nil {
		return r, fmt.Errorf("iperf3 JSON: %v: %.200s", err, out)
	}
	if j.Error != "" {
		return r, errors.New("iperf3: " + j.Error)
	}
	e := j.End
	r.SentBps, r.SentBytes = e.SumSent.BitsPerSecond, e.SumSent.Bytes
	r.ReceivedBps, r.ReceivedBytes = e.SumReceived.BitsPerSecond, e.SumReceived.Bytes
	r.Retransmits = e.SumSent.Retransmits
	if r.ReceivedBps == 0 && e.Sum.BitsPerSecond > 0 { // UDP reports "sum" only
		r.ReceivedBps, r.SentBytes = e.Sum.BitsPerSecond, e.Sum.Bytes
		r.LostPercent = e.Sum.LostPercent
	}
	r.ClientCPU, r.ServerCPU = e.CPU.HostTotal, e.CPU.RemoteTotal
	if r.ReceivedBps <= 0 {
		return r, fmt.Errorf("iperf3 reported no received throughput: %.300s", out)
	}
	return r, nil
}
