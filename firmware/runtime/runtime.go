package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/firmware/control"
	"github.com/bitw-dev/bitw/firmware/keylog"
	"github.com/bitw-dev/bitw/firmware/mgmt"
	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
)

// Tuning values of the composition; none is a protocol constant.
const (
	// DefaultShutdownTimeout bounds how long SIGTERM waits for the
	// peers to acknowledge the DELETEs before bitw exits anyway.
	DefaultShutdownTimeout = 3 * time.Second
	// readyTimeout bounds the wait for the stack's addresses (IPv6
	// duplicate address detection takes about a second).
	readyTimeout = 10 * time.Second
	// callTimeout bounds a status or metrics request to the IKE
	// goroutine, so a stuck control plane cannot hang the control
	// socket or the management server.
	callTimeout = 2 * time.Second
	// poolBuffers is the data path's buffer count: both RX loops'
	// batches, the neighbour queues and the local stack's frames, with
	// room to spare (netstack.DefaultPoolBuffers).
	poolBuffers = netstack.DefaultPoolBuffers
	// maxIKEDatagram is the largest UDP payload a socket read can return.
	maxIKEDatagram = 64 << 10
)

// Port is one opened link as the board hands it over.
type Port struct {
	NIC netstack.NIC
	// Kind says how the link is attached ("af_packet", "tap", "memory").
	Kind string
	// KernelAddrs are addresses the host's kernel holds on the link.
	// bitw owns its links, so each one is warned about: the kernel would
	// answer ARP and send port-unreachable beside bitw's own stack.
	KernelAddrs []netip.Prefix
	// Changes lists what opening the link changed (offloads turned
	// off, ...), and Notes non-fatal problems; both are logged.
	Changes, Notes []string
}

// PortOpener opens the link a port section names. The host runtime uses
// HostPort (AF_PACKET and TAP); tests pass in-memory NICs.
type PortOpener func(link config.Link) (Port, error)

// Options are what the composition takes besides the configuration.
type Options struct {
	// Stderr receives the log and the ready line; nil is os.Stderr.
	Stderr io.Writer
	// Version is what status and the version verb report.
	Version string
	// OpenPort opens the red and black links. It is required.
	OpenPort PortOpener
	// Control opens the control socket at [device] control; the host
	// runtime passes HostControl (a Unix socket). Nil runs without one,
	// as the firmware does: its console serves the verbs instead.
	Control func(path string) (net.Listener, error)
	// KeyLog opens the writer behind [device] save_keys; the host
	// runtime passes HostKeyLog (files in that directory). Nil means the
	// platform has nowhere to write them (the firmware has no file
	// system): save_keys is then ignored with a warning, never honoured
	// somewhere else.
	KeyLog func(dir string) (*keylog.Writer, error)
	// Console, when set, serves the verbs on a terminal (the firmware's
	// UART) and prints the ready line there.
	Console *Console
	// Crypto, when set, is the crypto engine that ESP SAs with
	// ENCR_AES_CBC and AUTH_HMAC_SHA2_256_128 run on (ipsec.Config.Crypto):
	// a board's hardware engine that passed its self-test (hw.Select).
	// Nil keeps every transform on Go's crypto.
	Crypto hw.Engine
	// Tunnels, when set, is told the number of outbound Child SAs in the
	// data plane whenever an SA is installed or deleted (the USB
	// armory's LED shows whether a tunnel is up). It runs on the IKE
	// goroutine and must not block.
	Tunnels func(outbound int)
	// Ready, when set, is called once the IKE sockets are up, after
	// control.ReadyLine has been printed.
	Ready func()
	// ShutdownTimeout bounds the DELETEs on shutdown; zero takes
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Console is a terminal that offers the verbs, plus poweroff when
// PowerOff is set (see control.Console).
type Console struct {
	In  io.Reader
	Out io.Writer
	// Echo echoes what is typed, for terminals in raw mode.
	Echo bool
	// PowerOff is called, on the console's goroutine, after the reply to
	// poweroff has been printed.
	PowerOff func()
}

// Runtime is one running appliance: the composition of the data plane,
// the network stack, IKE and the management interfaces. It implements
// control.Handler and mgmt.MetricsSource.
type Runtime struct {
	cfg   *config.Config
	opts  Options
	log   *slog.Logger
	level *slog.LevelVar
	start time.Time
	clock time.Time // the engine's epoch: Config.Now counts from here

	engine *ipsec.Engine
	events chan ipsec.Event
	pool   *ipsec.Pool
	stack  *netstack.Stack
	ike    *ike.Manager
	keys   *keylog.Writer
	ports  [2]Port

	// usage is the SAs' use for IKE's inactivity checks; inactivity says
	// some child sets one, so the data-plane loop samples it every tick.
	usage      *saUsage
	inactivity bool

	control net.Listener // nil without Options.Control
	console *control.Console
	sockets []ikeSocket

	ready   chan struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
}

// Run composes the appliance from cfg and runs it until ctx ends (SIGTERM
// or SIGINT), then deletes the SAs with the peers (bounded by
// Options.ShutdownTimeout), closes everything and returns nil. An error
// means the appliance could not start.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	r, err := New(cfg, opts)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// New builds the appliance: control socket, key log, ports, engine,
// policies, network stack and IKE manager, in that order, so that a
// second instance is refused before it touches the links. Nothing runs
// until Run. On error everything opened so far is closed again.
func New(cfg *config.Config, opts Options) (_ *Runtime, err error) {
	if opts.OpenPort == nil {
		return nil, errors.New("runtime: no port opener")
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	r := &Runtime{cfg: cfg, opts: opts, level: new(slog.LevelVar), start: time.Now(), ready: make(chan struct{})}
	r.clock = r.start
	r.level.Set(cfg.Device.LogLevel)
	r.log = slog.New(slog.NewTextHandler(opts.Stderr, &slog.HandlerOptions{Level: r.level}))

	ic, creds, err := ikeConfig(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		// Undo in reverse: the stack owns the NICs once it exists.
		switch {
		case r.stack != nil:
			r.stack.Close()
		default:
			for _, p := range r.ports {
				if p.NIC != nil {
					p.NIC.Close()
				}
			}
		}
		if r.control != nil {
			r.control.Close()
		}
	}()

	if opts.Control != nil {
		r.control, err = opts.Control(cfg.Device.Control)
		if err != nil {
			return nil, fmt.Errorf("control socket %s: %w", cfg.Device.Control, err)
		}
	}

	switch {
	case cfg.Device.SaveKeys == "":
	case opts.KeyLog == nil:
		r.log.Warn("save_keys ignored: this platform has no file system to write the keys to", "dir", cfg.Device.SaveKeys)
	default:
		r.keys, err = opts.KeyLog(cfg.Device.SaveKeys)
		if err != nil {
			return nil, err
		}
		r.log.Warn("SAVE_KEYS IS ON: every IKE and ESP key is written to disk; anyone who reads these files can decrypt the traffic. Debugging only.",
			"dir", cfg.Device.SaveKeys, "files", []string{keylog.ESPFile, keylog.IKEFile})
	}
	for i, pc := range []config.Interface{cfg.Red, cfg.Black} {
		name := netstack.Port(i).String()
		p, err := opts.OpenPort(pc.Link)
		if err != nil {
			return nil, fmt.Errorf("%s port %s: %w", name, pc.Link, err)
		}
		r.ports[i] = p
		r.log.Info("port opened", "port", name, "link", pc.Link.String(), "kind", p.Kind, "mac", p.NIC.MAC(), "mtu", p.NIC.MTU())
		for _, a := range p.KernelAddrs {
			r.log.Warn("the kernel holds an address on a link bitw owns: it will answer ARP and send port-unreachable beside bitw; remove it",
				"port", name, "link", pc.Link.String(), "addr", a)
		}
		for _, c := range p.Changes {
			r.log.Info("port set up", "port", name, "link", pc.Link.String(), "change", c)
		}
		for _, n := range p.Notes {
			r.log.Warn("port note", "port", name, "link", pc.Link.String(), "note", n)
		}
	}

	r.events = make(chan ipsec.Event, eventQueueLen)
	r.engine = ipsec.New(ipsec.Config{Now: r.engineNow, Events: r.events, Policy: cfg.Device.ProposalPolicy(), Crypto: opts.Crypto})
	if opts.Crypto != nil {
		r.log.Info("ESP AES-CBC with HMAC-SHA2-256-128 runs on the crypto engine", "engine", opts.Crypto.Name(), "caps", opts.Crypto.Caps().String())
	}
	if err := r.installDevicePolicy(); err != nil {
		return nil, err
	}

	r.pool, err = ipsec.NewPool(poolBuffers, bufferSize(cfg, r.ports), ipsec.DefaultHeadroom)
	if err != nil {
		return nil, err
	}
	r.stack, err = netstack.New(r.stackConfig(), r.ports[netstack.Red].NIC, r.ports[netstack.Black].NIC, r.engine)
	if err != nil {
		return nil, err
	}
	if mss4, mss6 := r.stack.MSS(); mss4 > 0 {
		r.log.Info("MSS clamping on", "ipv4", mss4, "ipv6", mss6)
	}

	r.usage = newSAUsage(r.engine, time.Now) // IKE's clock: Deps.Clock is nil
	for _, c := range ic.Connections {
		for _, ch := range c.Children {
			r.inactivity = r.inactivity || ch.Inactivity > 0
		}
	}
	deps := ike.Deps{Sender: r, Installer: installer{engine: r.engine, log: r.log, tunnels: opts.Tunnels, usage: r.usage}, Credentials: creds, Logger: r.log}
	if r.keys != nil {
		deps.KeyHook = keyHook{w: r.keys, log: r.log}
	}
	r.ike, err = ike.New(ic, deps)
	if err != nil {
		return nil, err
	}
	r.ike.Prepare()
	return r, nil
}

// bufferSize holds the larger port's frames with both reserves.
func bufferSize(cfg *config.Config, ports [2]Port) int {
	size := ipsec.DefaultBufferSize
	for i, pc := range []config.Interface{cfg.Red, cfg.Black} {
		mtu := min(max(pc.MTU, 0), ports[i].NIC.MTU())
		if mtu == 0 {
			mtu = ports[i].NIC.MTU()
		}
		size = max(size, ipsec.DefaultHeadroom+netstack.EthernetHeaderLen+mtu+ipsec.DefaultTailroom)
	}
	return size
}

// stackConfig mirrors [interfaces], [device] mss_clamp and, for the
// trains of ESP in UDP, save_keys.
func (r *Runtime) stackConfig() netstack.Config {
	port := func(i int, pc config.Interface) netstack.PortConfig {
		mtu := pc.MTU
		if nic := r.ports[i].NIC.MTU(); mtu == 0 || mtu > nic {
			if mtu > nic {
				r.log.Warn("configured MTU exceeds the link's; using the link's", "port", netstack.Port(i), "mtu", mtu, "link_mtu", nic)
			}
			mtu = nic
		}
		return netstack.PortConfig{Link: pc.Link.String(), Addresses: pc.Addresses, Gateways: pc.Gateways, MTU: mtu}
	}
	c := netstack.Config{
		Red:        port(int(netstack.Red), r.cfg.Red),
		Black:      port(int(netstack.Black), r.cfg.Black),
		Pool:       r.pool,
		Logger:     r.log,
		NoMSSClamp: !r.cfg.Device.MSSClamp,
		// With save_keys on, someone decrypts captures of the black
		// link: one ESP packet per captured frame (netstack.Config).
		NoESPTrains: r.keys != nil,
	}
	if r.cfg.Device.MSSClamp && r.cfg.Device.MSS > 0 {
		// A fixed MSS: the overhead that makes IPv4 SYNs come out at
		// exactly that value (IPv6 ones 20 octets lower).
		c.ESPOverhead = max(c.Black.MTU-20-20-int(r.cfg.Device.MSS), 1)
	}
	return c
}

// engineNow is the engine's monotonic clock (ipsec.Config.Now), in
// nanoseconds since the runtime started.
func (r *Runtime) engineNow() int64 { return int64(time.Since(r.clock)) }

// Ready is closed once the appliance is up: IKE sockets bound, start
// actions run.
func (r *Runtime) Ready() <-chan struct{} { return r.ready }

// Run starts the appliance and blocks until ctx ends, then shuts down.
// Call it once.
func (r *Runtime) Run(ctx context.Context) error {
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	ikeCtx, stopIKE := context.WithCancel(context.Background())
	defer stopIKE()

	r.stack.Start()
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	err := r.stack.WaitReady(rctx)
	cancel()
	if err == nil {
		err = r.openIKESockets()
	}
	if err != nil {
		r.close()
		return err
	}

	r.goRun("ike", func() {
		if err := r.ike.Run(ikeCtx); err != nil && !errors.Is(err, context.Canceled) {
			r.log.Error("IKE manager stopped", "err", err)
		}
	})
	for _, s := range r.sockets {
		r.goRun("ike socket", func() { r.readIKE(s) })
	}
	r.goRun("data plane events", func() { r.dataPlaneLoop(bg) })

	if r.control != nil {
		verbs := &control.Verbs{Handler: r, Version: r.opts.Version, Logger: r.log}
		srv := &control.Server{Verbs: verbs, Logger: r.log}
		r.goRun("control socket", func() {
			if err := srv.Serve(bg, r.control); err != nil {
				r.log.Error("control socket failed", "err", err)
			}
		})
	}
	if c := r.opts.Console; c != nil {
		r.console = &control.Console{
			Verbs: &control.Verbs{Handler: r, Version: r.opts.Version, PowerOff: c.PowerOff, Logger: r.log},
			In:    c.In, Out: c.Out, Echo: c.Echo,
		}
		// Not waited for on close: a blocked terminal read cannot be
		// interrupted. The console lives as long as the firmware.
		go func() {
			if err := r.console.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
				r.log.Error("console stopped", "err", err)
			}
		}()
	}
	if addr := r.cfg.Management.Listen; addr.IsValid() {
		ln, err := r.stack.ListenTCP(addr)
		if err != nil {
			r.log.Error("management server not started", "listen", addr, "err", err)
		} else {
			m := mgmt.New(mgmt.Config{Status: r, Metrics: r, Logger: r.log})
			r.goRun("management", func() {
				if err := m.Serve(bg, ln); err != nil {
					r.log.Error("management server failed", "err", err)
				}
			})
			r.log.Info("management server listening", "listen", addr)
		}
	}

	var startErr error
	if err := r.ike.Call(ctx, func() { startErr = r.ike.Start() }); err != nil {
		startErr = err
	}
	if startErr != nil && ctx.Err() == nil {
		r.log.Warn("a start action failed (see above); bitw keeps running and answers peers", "err", startErr)
	}
	if ctx.Err() == nil {
		if r.console != nil {
			r.console.Ready()
		} else {
			fmt.Fprintln(r.opts.Stderr, control.ReadyLine)
		}
		ctl := "none"
		if r.control != nil {
			ctl = r.cfg.Device.Control
		}
		r.log.Info("ready", "device", r.cfg.Device.Name, "red", r.cfg.Red.Addresses, "black", r.cfg.Black.Addresses,
			"control", ctl, "console", r.console != nil, "connections", len(r.cfg.Connections))
		close(r.ready)
		if r.opts.Ready != nil {
			r.opts.Ready()
		}
	}

	<-ctx.Done()
	r.shutdown()
	stopIKE()
	stopBG()
	r.close()
	return nil
}

// shutdown deletes every IKE SA with its peer, waiting at most
// ShutdownTimeout for the answers (a dead peer must not hold up exit).
func (r *Runtime) shutdown() {
	r.log.Info("shutting down: deleting SAs with the peers", "timeout", r.opts.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	if err := r.ike.Call(ctx, func() { r.ike.Shutdown(func() { close(done) }) }); err != nil {
		r.log.Warn("shutdown: IKE did not take the request", "err", err)
		return
	}
	select {
	case <-done:
		r.log.Info("shutdown: all IKE SAs deleted")
	case <-ctx.Done():
		r.log.Warn("shutdown: peers did not acknowledge every DELETE in time; exiting anyway")
	}
}

// close stops every goroutine and releases the ports. The caller has
// cancelled the goroutines' contexts; closing the sockets unblocks the
// readers.
func (r *Runtime) close() {
	r.closing.Store(true)
	for _, s := range r.sockets {
		s.conn.Close()
	}
	if r.control != nil {
		r.control.Close()
	}
	r.stack.Close()
	r.wg.Wait()
	if r.keys != nil {
		r.log.Warn("save_keys files stay on disk: delete them when the debugging is done", "dir", r.keys.Dir())
	}
	r.log.Info("stopped")
}

// goRun runs f on a goroutine the runtime waits for on close.
func (r *Runtime) goRun(what string, f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
		if !r.closing.Load() {
			r.log.Debug("goroutine ended", "what", what)
		}
	}()
}
