package main

import (
	"fmt"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// settings are the measurement parameters shared by every row.
type settings struct {
	duration time.Duration // iperf3 -t
	pings    int           // echo requests for the round-trip average
}

// result is one row's measurements.
type result struct {
	Row     int    `json:"row"`
	Name    string `json:"name"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`

	// ThroughputBps is what the iperf3 receiver counted, in bits/s.
	ThroughputBps float64 `json:"throughput_bps,omitempty"`
	SentBps       float64 `json:"sent_bps,omitempty"`
	Retransmits   int     `json:"retransmits,omitempty"`
	Seconds       float64 `json:"seconds,omitempty"`
	// TunnelShare is the bytes gwA's tunnel carried during the run over
	// the bytes iperf3 sent (above 1 by the headers; 0 without a tunnel).
	TunnelShare float64 `json:"tunnel_bytes_per_iperf_byte,omitempty"`
	// ESP is how gwA's Child SA carried ESP: "in UDP" or "raw" (empty
	// without a tunnel).
	ESP string `json:"esp,omitempty"`

	// LoadAvg is the machine's one-minute load average before the row.
	LoadAvg float64 `json:"load_average_1m,omitempty"`

	Pings       int     `json:"pings,omitempty"`
	PingLoss    float64 `json:"ping_loss,omitempty"`
	PingAvgMsec float64 `json:"ping_avg_ms,omitempty"`

	// ProcCPU is each gateway process's CPU during the iperf3 run, in
	// percent of one core; SystemCPU is the whole machine's busy share
	// (interrupts and softirqs included), in percent of all cores.
	ProcCPU        map[string]float64 `json:"proc_cpu_percent,omitempty"`
	SystemCPU      float64            `json:"system_cpu_percent,omitempty"`
	IperfClientCPU float64            `json:"iperf3_client_cpu_percent,omitempty"`
	IperfServerCPU float64            `json:"iperf3_server_cpu_percent,omitempty"`
}

// measure pings hostB from hostA, then runs one single-stream TCP iperf3
// hostA -> hostB while sampling the gateway processes' CPU time. Where
// the row has a tunnel, the tunnel must have carried what iperf3 sent.
func measure(r *runner, topo *harness.Topology, gws gateways, s settings) (result, error) {
	procs := gws.procs
	res := result{LoadAvg: loadAverage()}
	ping, err := topo.HostA.NS.Ping(topo.HostB.Addr4, s.pings, 100*time.Millisecond)
	if err != nil {
		return res, err
	}
	if ping.Received == 0 {
		return res, fmt.Errorf("no ping replies from %s:\n%s", topo.HostB.Addr4, ping.Output)
	}
	res.Pings, res.PingLoss = ping.Transmitted, ping.Loss
	res.PingAvgMsec = float64(ping.AvgRTT) / float64(time.Millisecond)

	before := make([]time.Duration, len(procs))
	for i, p := range procs {
		if before[i], err = procCPU(p.pid); err != nil {
			return res, fmt.Errorf("%s: %v", p.name, err)
		}
	}
	var tunnel0 uint64
	if gws.tunnel != nil {
		var encap bool
		if tunnel0, encap, err = gws.tunnel(); err != nil {
			return res, err
		}
		res.ESP = "raw"
		if encap {
			res.ESP = "in UDP"
		}
	}
	busy0, total0, err := systemCPU()
	if err != nil {
		return res, err
	}
	profiles := make(chan error, len(gws.profilers))
	for _, p := range gws.profilers {
		go func() { profiles <- p(r.dir, s.duration-2*time.Second) }()
	}
	start := time.Now()
	ip, err := harness.Iperf3(r, topo.HostA.NS, topo.HostB.NS, topo.HostB.Addr4, harness.IperfOptions{Duration: s.duration})
	wall := time.Since(start)
	for range gws.profilers {
		if perr := <-profiles; perr != nil {
			r.Logf("%v", perr)
		}
	}
	if err != nil {
		return res, err
	}
	busy1, total1, err := systemCPU()
	if err != nil {
		return res, err
	}
	res.ProcCPU = map[string]float64{}
	for i, p := range procs {
		after, err := procCPU(p.pid)
		if err != nil {
			return res, fmt.Errorf("%s after the run (did it exit?): %v", p.name, err)
		}
		res.ProcCPU[p.name] = 100 * float64(after-before[i]) / float64(wall)
	}
	if total1 > total0 {
		res.SystemCPU = 100 * float64(busy1-busy0) / float64(total1-total0)
	}
	res.ThroughputBps, res.SentBps, res.Retransmits = ip.ReceivedBps, ip.SentBps, ip.Retransmits
	res.IperfClientCPU, res.IperfServerCPU = ip.ClientCPU, ip.ServerCPU
	res.Seconds = s.duration.Seconds()
	if gws.tunnel != nil {
		tunnel1, _, err := gws.tunnel()
		if err != nil {
			return res, err
		}
		if ip.SentBytes > 0 {
			res.TunnelShare = float64(tunnel1-tunnel0) / float64(ip.SentBytes)
		}
		// TCP payload plus its headers: the tunnel sees at least as much.
		if res.TunnelShare < 1 {
			return res, fmt.Errorf("gwA's tunnel carried %d bytes while iperf3 sent %d: traffic bypassed the tunnel",
				tunnel1-tunnel0, ip.SentBytes)
		}
	}
	return res, nil
}
