//go:build mx6ullevk

// Command bringup is the QEMU bring-up image for board/mx6ullevk. It
// prints what the board found, answers ARP and ICMP echo on both ENET
// ports for the addresses below, sleeps in WFI between interrupts, and
// obeys three console commands: "stats", "sleep MS" (proves that timers
// wake the core from WFI) and "poweroff [STATUS]", which ends QEMU with
// STATUS through semihosting. test/qemu drives it.
package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/bitw-dev/bitw/board/imxenet"
	"github.com/bitw-dev/bitw/board/mx6ullevk"
	"github.com/bitw-dev/bitw/board/tamago/imx6"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/test/qemu/responder"
)

// Addresses the test puts on the other end of each port; set with
// -ldflags -X to move them.
var (
	redAddr   = "192.0.2.2"
	blackAddr = "198.51.100.2"
	redMAC    = "02:b1:70:00:00:01"
	blackMAC  = "02:b1:70:00:00:02"
)

// batch is how many frames one Read may return.
const batch = 16

func main() {
	uptime := imx6.Uptime()
	board, err := mx6ullevk.Open(mx6ullevk.Config{
		Addrs: map[string]net.HardwareAddr{
			mx6ullevk.PortENET1: mustMAC(redMAC),
			mx6ullevk.PortENET2: mustMAC(blackMAC),
		},
	})
	if err != nil {
		fmt.Printf("bringup: board: %v\n", err)
		mx6ullevk.Poweroff(3)
	}
	p := board.Platform()
	fmt.Printf("bringup: %s, main after %v\n", board.Model(), uptime)
	fmt.Printf("bringup: entropy: %s\n", p.Entropy)
	fmt.Printf("bringup: clock: %s (synced %v)\n", board.Clock().Now().UTC().Format("2006-01-02T15:04:05Z"), board.Clock().Synced())

	ports := []struct {
		name string
		addr string
	}{{mx6ullevk.PortENET1, redAddr}, {mx6ullevk.PortENET2, blackAddr}}
	var nics []*imxenet.NIC
	var responders []*responder.Responder
	for _, port := range ports {
		nic, err := board.Port(port.name)
		if err != nil {
			fmt.Printf("bringup: %v\n", err)
			mx6ullevk.Poweroff(3)
		}
		r := responder.New(nic.MAC(), netip.MustParseAddr(port.addr))
		fmt.Printf("bringup: %s %s %s\n", port.name, nic.MAC(), port.addr)
		nics = append(nics, nic)
		responders = append(responders, r)
		go serve(nic, r)
	}
	fmt.Println("bringup: ready")

	console := board.Console()
	for {
		line, err := console.ReadLine()
		if err != nil {
			fmt.Printf("bringup: console: %v\n", err)
			continue
		}
		cmd := strings.Fields(line)
		switch {
		case len(cmd) == 0:
		case cmd[0] == "stats":
			for i, nic := range nics {
				fmt.Printf("bringup: %s %+v %+v\n", nic.Name(), nic.Stats(), responders[i].Counters)
			}
			fmt.Printf("bringup: unexpected interrupts %d, console overruns %d\n",
				board.UnexpectedInterrupts(), console.Overruns())
		case cmd[0] == "sleep" && len(cmd) == 2:
			ms, err := strconv.Atoi(cmd[1])
			if err != nil || ms < 0 {
				fmt.Printf("bringup: sleep: bad duration %q\n", cmd[1])
				continue
			}
			start := time.Now()
			time.Sleep(time.Duration(ms) * time.Millisecond)
			fmt.Printf("bringup: slept %v\n", time.Since(start).Round(time.Millisecond))
		case cmd[0] == "poweroff":
			status := 0
			if len(cmd) > 1 {
				if status, err = strconv.Atoi(cmd[1]); err != nil {
					fmt.Printf("bringup: poweroff: bad status %q\n", cmd[1])
					continue
				}
			}
			fmt.Printf("bringup: poweroff %d\n", status)
			mx6ullevk.Poweroff(status)
		default:
			fmt.Printf("bringup: unknown command %q (stats, sleep MS, poweroff [STATUS])\n", cmd[0])
		}
	}
}

// serve answers on one port. The counters are read by the console
// goroutine while this one writes them: a snapshot for a person, not for
// arithmetic.
func serve(nic *imxenet.NIC, r *responder.Responder) {
	pool, err := ipsec.NewPool(batch, ipsec.DefaultBufferSize, ipsec.DefaultHeadroom)
	if err != nil {
		panic(err)
	}
	bufs := make([]*ipsec.Buffer, batch)
	for i := range bufs {
		bufs[i] = pool.Get()
	}
	replies := make([]*ipsec.Buffer, 0, batch)
	for {
		n, err := nic.Read(bufs)
		if err != nil {
			fmt.Printf("bringup: %s: %v\n", nic.Name(), err)
			return
		}
		replies = replies[:0]
		for _, b := range bufs[:n] {
			if r.Reply(b) {
				replies = append(replies, b)
			}
		}
		if len(replies) > 0 {
			if _, err := nic.Write(replies); err != nil {
				fmt.Printf("bringup: %s: %v\n", nic.Name(), err)
			}
		}
		for _, b := range bufs[:n] {
			b.Reset(ipsec.DefaultHeadroom)
		}
	}
}

func mustMAC(s string) net.HardwareAddr {
	mac, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return mac
}
