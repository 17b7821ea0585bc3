//go:build linux

package host

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"golang.org/x/sys/unix"
)

// A TPACKET_V2 ring slot (packet(7), linux/if_packet.h):
//
//	+-------------------+---------------------+-...-+-------------+---------------+
//	| tpacket2_hdr (32) | sockaddr_ll (20)    | pad | virtio hdr  | frame at      |
//	| status, len, ...  | at TPACKET_ALIGN(32)|     | (10)        | tp_mac        |
//	+-------------------+---------------------+-...-+-------------+---------------+
//
// V2 rather than V3: V3 hands over whole blocks on a timer, which adds
// about 1.7 ms to an idle round trip; V2 releases frames one at a time.
//
// Slots are sized for one MTU frame, so that a ring of a few MB holds
// thousands of frames. A segmentation-offload frame (up to 64 KiB) does
// not fit: with PACKET_COPY_THRESH the kernel then marks its slot
// TP_STATUS_COPY and queues the whole frame on the socket, where Read
// fetches it with recvfrom(2) in ring order.
const (
	tpStatusOff   = 0
	tpLenOff      = 4
	tpSnaplenOff  = 8
	tpMacOff      = 12
	tpStatusUser  = unix.TP_STATUS_USER
	tpStatusCopy  = unix.TP_STATUS_COPY
	tpStatusVLAN  = unix.TP_STATUS_VLAN_VALID
	tpStatusLoss  = unix.TP_STATUS_LOSING
	sllOff        = unix.SizeofTpacket2Hdr // TPACKET_ALIGN(sizeof(tpacket2_hdr)) = 32
	sllPkttypeOff = sllOff + 10
	// slotOverhead bounds tp_mac: the header, sockaddr_ll, alignment
	// and the virtio header.
	slotOverhead = 128
	ringBlock    = 1 << 16
	maxGSOFrame  = vnetHdrLen + 65535 + ethHeaderLen
)

// maxScatterSegments bounds the segments of an offload frame that one
// recvmsg(2) spreads over the caller's buffers; longer ones go through
// the big buffer.
const maxScatterSegments = 128

// slotSize is the smallest power of two from 2 KiB that holds a frame of
// the link's MTU behind the slot header.
func slotSize(mtu int) int {
	s := 2048
	for s < slotOverhead+ethHeaderLen+mtu && s < ringBlock {
		s *= 2
	}
	return s
}

// packetNIC is a port over an AF_PACKET socket.
type packetNIC struct {
	info   Info
	mac    netstack.MAC
	fd     int
	file   *os.File
	rc     syscall.RawConn
	ring   []byte
	frames int
	slot   int // ring slot size
	closed atomic.Bool

	rxMu   sync.Mutex // one reader; guards the RX fields below
	rxNext int
	rxBufs []*ipsec.Buffer
	rxN    int
	seg    segmenter
	segIdx int    // ring slot the segmenter reads from; -1 when idle or reading big
	big    []byte // an oversized frame fetched from the socket queue
	rxIov  []unix.Iovec
	rxMsg  unix.Msghdr
	rxVnet [vnetHdrLen]byte
	readFn func(uintptr) bool

	txMu        sync.Mutex // guards the TX scratch below
	txMsgs      []mmsghdr
	txIov       []unix.Iovec
	txVnet      [][vnetHdrLen]byte     // per message, for trains
	txMsgFrames []int                  // frames per message
	txKind      []netstack.OffloadKind // per message
	txKinds     atomic.Uint32          // netstack.OffloadKinds still offered
	txFrom      int
	txN         int
	txErrno     syscall.Errno
	writeFn     func(uintptr) bool

	kstatMu sync.Mutex // PACKET_STATISTICS resets on read; totals live here
	kstat   unix.TpacketStats

	stats struct {
		rxFrames, rxGSO, rxChecksums, rxTruncated atomic.Uint64
		rxBadOffload, rxVLAN, rxLoss              atomic.Uint64
		rxScattered                               atomic.Uint64
		txFrames, txErrors                        atomic.Uint64
		txTrains, txOffloadRefused                atomic.Uint64
	}
}

// mmsghdr is struct mmsghdr for sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// zeroVnet is the virtio-net header of every transmitted frame: no
// checksum offload, no segmentation.
var zeroVnet [vnetHdrLen]byte

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPacket(link string, opts Options) (_ Port, err error) {
	n := &packetNIC{info: Info{Link: link, Kind: "af_packet"}, segIdx: -1}
	if err := prepareLink(link, opts, &n.info); err != nil {
		return nil, err
	}
	n.mac = n.info.MAC
	if !opts.MAC.IsZero() {
		n.mac = opts.MAC
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("host: %s: packet socket: %w", link, err)
	}
	n.fd = fd
	defer func() {
		if err != nil {
			if n.ring != nil {
				unix.Munmap(n.ring)
			}
			unix.Close(fd)
		}
	}()
	set := func(level, opt, v int, what string) error {
		if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
			return fmt.Errorf("host: %s: %s: %w", link, what, err)
		}
		return nil
	}
	// The virtio header must be asked for before the ring exists.
	if err := set(unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"); err != nil {
		return nil, err
	}
	if err := set(unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2, "PACKET_VERSION"); err != nil {
		return nil, err
	}
	// Frames the kernel itself sends on the link are not ours to read.
	if err := set(unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"); err != nil {
		n.info.Notes = append(n.info.Notes, err.Error())
	}
	buf := opts.SocketBuffer
	if buf == 0 {
		buf = DefaultSocketBuffer
	}
	for _, o := range []struct {
		force, plain int
		name         string
	}{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, "send"}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, "receive"}} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.force, buf) != nil {
			n.info.Notes = append(n.info.Notes, "could not force the "+o.name+" buffer size; using SO_"+o.name+"BUF")
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.plain, buf)
		}
	}
	if opts.QdiscBypass {
		if err := set(unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS"); err != nil {
			n.info.Notes = append(n.info.Notes, err.Error())
		}
	}
	if err := set(unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1, "PACKET_COPY_THRESH"); err != nil {
		return nil, err
	}
	n.slot = slotSize(n.info.MTU)
	perBlock := ringBlock / n.slot
	n.frames = opts.RingFrames
	if n.frames <= 0 {
		n.frames = DefaultRingFrames
	}
	n.frames = (n.frames + perBlock - 1) / perBlock * perBlock
	req := unix.TpacketReq{Block_size: ringBlock, Block_nr: uint32(n.frames / perBlock), Frame_size: uint32(n.slot), Frame_nr: uint32(n.frames)}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("host: %s: PACKET_RX_RING: %w", link, err)
	}
	n.big = make([]byte, maxGSOFrame)
	n.rxIov = make([]unix.Iovec, 2+maxScatterSegments)
	n.ring, err = unix.Mmap(fd, 0, n.slot*n.frames, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("host: %s: map ring: %w", link, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: n.info.Index}); err != nil {
		return nil, fmt.Errorf("host: %s: bind: %w", link, err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(n.info.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return nil, fmt.Errorf("host: %s: promiscuous mode: %w", link, err)
	}
	n.file = os.NewFile(uintptr(fd), "packet:"+link)
	if n.rc, err = n.file.SyscallConn(); err != nil {
		n.file.Close()
		return nil, fmt.Errorf("host: %s: %w", link, err)
	}
	n.txMsgs = make([]mmsghdr, DefaultBatch)
	n.txIov = make([]unix.Iovec, 2*DefaultBatch)
	n.txVnet = make([][vnetHdrLen]byte, DefaultBatch)
	n.txMsgFrames = make([]int, DefaultBatch)
	n.txKind = make([]netstack.OffloadKind, DefaultBatch)
	if !opts.NoSegmentOffload {
		n.txKinds.Store(uint32(netstack.OffloadKindsOf(netstack.OffloadTCPv4, netstack.OffloadTCPv6, netstack.OffloadUDP)))
	}
	n.readFn, n.writeFn = n.readReady, n.writeReady
	return n, nil
}

func (n *packetNIC) MAC() netstack.MAC { return n.mac }
func (n *packetNIC) MTU() int          { return n.info.MTU }
func (n *packetNIC) Info() Info        { return n.info }

// Close unblocks Read and Write and releases the socket and its ring.
func (n *packetNIC) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	err := n.file.Close()
	// The reader may still be walking the ring; unmap only after it left.
	n.rxMu.Lock()
	unix.Munmap(n.ring)
	n.ring = nil
	n.rxMu.Unlock()
	return err
}

// Read implements netstack.NIC.
func (n *packetNIC) Read(bufs []*ipsec.Buffer) (int, error) {
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	if n.closed.Load() || n.ring == nil {
		return 0, errClosed
	}
	n.rxBufs, n.rxN = bufs, 0
	err := n.rc.Read(n.readFn)
	n.rxBufs = nil
	if err != nil {
		if isClosed(err) || n.closed.Load() {
			return 0, errClosed
		}
		return 0, err
	}
	return n.rxN, nil
}

// readReady fills rxBufs from pending segments and ready ring slots; it
// returns false to wait for the socket to become readable.
func (n *packetNIC) readReady(fd uintptr) bool {
	bufs := n.rxBufs
	for n.rxN < len(bufs) {
		if n.seg.active() {
			k := n.seg.fill(bufs[n.rxN:])
			n.rxN += k
			n.stats.rxFrames.Add(uint64(k))
			if !n.seg.active() && n.segIdx >= 0 {
				n.releaseSlot(n.segIdx)
				n.segIdx = -1
			}
			continue
		}
		slot := n.ring[n.rxNext*n.slot : (n.rxNext+1)*n.slot]
		status := atomic.LoadUint32((*uint32)(unsafe.Pointer(&slot[tpStatusOff])))
		if status&tpStatusUser == 0 {
			break
		}
		idx := n.rxNext
		if status&tpStatusCopy != 0 {
			k, later := n.takeQueued(fd, slot, bufs[n.rxN:], n.rxN > 0)
			if later {
				// Its segments need more buffers than this batch
				// has left; the next Read starts with it.
				break
			}
			n.rxN += k
		} else {
			n.rxN += n.take(idx, slot, status, bufs[n.rxN:])
		}
		n.rxNext = (n.rxNext + 1) % n.frames
		if status&tpStatusLoss != 0 {
			n.stats.rxLoss.Add(1)
		}
		if n.segIdx != idx {
			n.releaseSlot(idx)
		}
	}
	return n.rxN > 0
}

func (n *packetNIC) releaseSlot(idx int) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&n.ring[idx*n.slot+tpStatusOff])), unix.TP_STATUS_KERNEL)
}

// takeQueued fetches the whole frame that a TP_STATUS_COPY slot stands
// for from the socket's receive queue (where the kernel put it in ring
// order) and handles it like a slot's frame. An offload frame is read
// straight into bufs, segment by segment (readSegments); when bufs is
// too short for that and the batch already holds frames (more), it
// reports later and leaves the frame queued.
func (n *packetNIC) takeQueued(fd uintptr, slot []byte, bufs []*ipsec.Buffer, more bool) (k int, later bool) {
	if slot[sllPkttypeOff] == unix.PACKET_OUTGOING {
		// The queued copy of an outgoing frame is read and discarded
		// below all the same, to keep the queue in step with the ring.
		n.recvBig(fd)
		return 0, false
	}
	switch k, r := n.readSegments(fd, slot, bufs); r {
	case segmentsRead:
		return k, false
	case segmentsNoRoom:
		if more {
			return 0, true
		}
	}
	got := n.recvBig(fd)
	if got < vnetHdrLen+ethHeaderLen {
		n.stats.rxTruncated.Add(1)
		return 0, false
	}
	return n.frame(-1, n.big[:vnetHdrLen], n.big[vnetHdrLen:got], bufs), false
}

// Outcomes of readSegments.
const (
	segmentsRead   = iota // the queued frame was consumed (k segments, maybe none)
	segmentsNoRoom        // bufs is too short for its segments
	segmentsOther         // not an offload frame it can scatter: use recvBig
)

// readSegments reads the queued offload frame that slot announces with
// one recvmsg(2) whose iovecs put each segment's payload in its own
// buffer, behind room for the headers, so that the frame is copied
// once, by the kernel. The headers that land in the first buffer are
// then copied to the others and each segment's are fixed. The slot's
// truncated copy of the frame tells the geometry beforehand.
func (n *packetNIC) readSegments(fd uintptr, slot []byte, bufs []*ipsec.Buffer) (int, int) {
	length := int(binary.NativeEndian.Uint32(slot[tpLenOff:]))
	snap := int(binary.NativeEndian.Uint32(slot[tpSnaplenOff:]))
	mac := int(binary.NativeEndian.Uint16(slot[tpMacOff:]))
	if mac < vnetHdrLen || mac+snap > len(slot) {
		return 0, segmentsOther
	}
	vnet, head := slot[mac-vnetHdrLen:mac], slot[mac:mac+snap]
	h := parseVnet(vnet)
	s := &n.seg
	if h.gsoType == unix.VIRTIO_NET_HDR_GSO_NONE || !s.parse(head, length, h) {
		*s = segmenter{}
		return 0, segmentsOther
	}
	segs := s.segments()
	switch {
	case segs > len(n.rxIov)-2:
		*s = segmenter{}
		return 0, segmentsOther
	case segs > len(bufs):
		*s = segmenter{}
		return 0, segmentsNoRoom
	}
	for _, b := range bufs[:segs] {
		if len(b.Space()) < s.hdrLen+s.mss {
			*s = segmenter{}
			return 0, segmentsOther
		}
	}
	n.rxIov[0] = unix.Iovec{Base: &n.rxVnet[0]}
	n.rxIov[0].SetLen(vnetHdrLen)
	for i, b := range bufs[:segs] {
		from := s.hdrLen
		if i == 0 {
			from = 0
		}
		sp := b.Space()[from : s.hdrLen+s.segmentLen(i)]
		n.rxIov[1+i] = unix.Iovec{Base: &sp[0]}
		n.rxIov[1+i].SetLen(len(sp))
	}
	n.rxMsg = unix.Msghdr{Iov: &n.rxIov[0]}
	n.rxMsg.SetIovlen(1 + segs)
	var r uintptr
	var errno syscall.Errno
	for {
		r, _, errno = unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&n.rxMsg)), unix.MSG_DONTWAIT)
		if errno != unix.EINTR {
			break
		}
	}
	clear(n.rxIov[:1+segs])
	n.rxMsg = unix.Msghdr{}
	first := bufs[0].Space()
	switch {
	case errno != 0 || int(r) != vnetHdrLen+length:
		*s = segmenter{}
		n.stats.rxTruncated.Add(1)
		return 0, segmentsRead
	case string(n.rxVnet[:]) != string(vnet) || string(first[:s.hdrLen]) != string(head[:s.hdrLen]):
		// The queue and the ring disagree: not the frame announced.
		*s = segmenter{}
		n.stats.rxBadOffload.Add(1)
		return 0, segmentsRead
	}
	// The first buffer's headers are copied before they are fixed.
	for i := segs - 1; i >= 0; i-- {
		sp := bufs[i].Space()
		if i > 0 {
			copy(sp[:s.hdrLen], first[:s.hdrLen])
		}
		size := s.hdrLen + s.segmentLen(i)
		s.fixHeaders(sp[:size], i)
		setPacket(bufs[i], size)
	}
	*s = segmenter{}
	n.stats.rxGSO.Add(1)
	n.stats.rxScattered.Add(1)
	n.stats.rxFrames.Add(uint64(segs))
	return segs, segmentsRead
}

// recvBig reads one queued frame, virtio header first, into n.big.
func (n *packetNIC) recvBig(fd uintptr) int {
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&n.big[0])), uintptr(len(n.big)), unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0
		}
		return int(r)
	}
}

// take turns one ring slot into a frame in bufs[0], or into segments in
// bufs when it holds an offload frame, and returns how many it filled.
func (n *packetNIC) take(idx int, slot []byte, status uint32, bufs []*ipsec.Buffer) int {
	if slot[sllPkttypeOff] == unix.PACKET_OUTGOING {
		return 0
	}
	if status&tpStatusVLAN != 0 {
		// The hardware stripped a VLAN tag; untagged processing
		// would put the frame on the wrong network.
		n.stats.rxVLAN.Add(1)
		return 0
	}
	length := int(binary.NativeEndian.Uint32(slot[tpLenOff:]))
	snap := int(binary.NativeEndian.Uint32(slot[tpSnaplenOff:]))
	mac := int(binary.NativeEndian.Uint16(slot[tpMacOff:]))
	if snap < length || mac < vnetHdrLen || mac+snap > len(slot) {
		n.stats.rxTruncated.Add(1)
		return 0
	}
	return n.frame(idx, slot[mac-vnetHdrLen:mac], slot[mac:mac+snap], bufs)
}

// frame handles one received frame behind its virtio header.
func (n *packetNIC) frame(idx int, vnet, frame []byte, bufs []*ipsec.Buffer) int {
	h := parseVnet(vnet)
	if h.gsoType != unix.VIRTIO_NET_HDR_GSO_NONE {
		if !n.seg.start(frame, h) {
			n.stats.rxBadOffload.Add(1)
			return 0
		}
		n.stats.rxGSO.Add(1)
		n.segIdx = idx
		k := n.seg.fill(bufs)
		n.stats.rxFrames.Add(uint64(k))
		if !n.seg.active() {
			n.segIdx = -1
		}
		return k
	}
	b := bufs[0]
	space := b.Space()
	if len(frame) > len(space) {
		n.stats.rxTruncated.Add(1)
		return 0
	}
	copy(space, frame)
	if h.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
		if !completeChecksum(space[:len(frame)], h) {
			n.stats.rxBadOffload.Add(1)
			return 0
		}
		n.stats.rxChecksums.Add(1)
	}
	setPacket(b, len(frame))
	n.stats.rxFrames.Add(1)
	return 1
}

// Write implements netstack.NIC with sendmmsg(2), each frame behind a
// zero virtio header.
func (n *packetNIC) Write(bufs []*ipsec.Buffer) (int, error) { return n.send(bufs, nil) }

// TxOffloads implements netstack.SegmentOffload: trains of every kind,
// unless the options turned them off or the kernel refused a kind.
func (n *packetNIC) TxOffloads() netstack.TxOffloads {
	return netstack.TxOffloads{Kinds: netstack.OffloadKinds(n.txKinds.Load()), MaxFrames: maxTrainFrames}
}

// WriteTrains implements netstack.SegmentOffload: each train leaves as one
// frame behind a virtio header that asks for segmentation and checksums
// (vnetForTrain). The iovecs point into the caller's buffers: the first
// frame whole, then each later frame's payload, so nothing is copied
// here. Over veth the kernel checks the headers and passes the frame on
// whole; elsewhere it segments it, in the driver or in software.
func (n *packetNIC) WriteTrains(bufs []*ipsec.Buffer, trains []netstack.Train) (int, error) {
	return n.send(bufs, trains)
}

// maxTrainFrames bounds a train so that it fits one sendmmsg batch.
const maxTrainFrames = DefaultBatch

// send transmits bufs, grouped by trains, or frame by frame when trains
// is nil. A message the kernel refuses (EMSGSIZE, ENETDOWN) is counted
// and skipped; a refused train also withdraws its kind, since the kernel
// would refuse the next one too.
func (n *packetNIC) send(bufs []*ipsec.Buffer, trains []netstack.Train) (int, error) {
	if n.closed.Load() {
		return 0, errClosed
	}
	n.txMu.Lock()
	defer n.txMu.Unlock()
	sent, ti, singles := 0, 0, 0
	for sent < len(bufs) {
		msgs, iovs, frames := 0, 0, 0
		for msgs < len(n.txMsgs) && sent+frames < len(bufs) {
			at := sent + frames
			t, next := netstack.Train{Frames: 1}, ti
			if singles == 0 && trains != nil {
				if ti >= len(trains) {
					break
				}
				t, next = trains[ti], ti+1
				switch {
				case t.Frames < 1 || at+t.Frames > len(bufs):
					// A caller's mistake: the rest goes frame by frame.
					trains, t = nil, netstack.Train{Frames: 1}
				case t.Kind != netstack.OffloadNone && !trainFits(bufs[at:at+t.Frames], t):
					// So does a train whose frames do not hold its
					// headers.
					singles, t = t.Frames, netstack.Train{Frames: 1}
				}
			}
			if iovs+1+t.Frames > len(n.txIov) {
				break
			}
			n.buildMsg(msgs, bufs[at:at+t.Frames], t, iovs)
			msgs, iovs, frames = msgs+1, iovs+1+t.Frames, frames+t.Frames
			ti = next
			if singles > 0 {
				singles--
			}
		}
		if msgs == 0 {
			// A train longer than the iovecs hold; trains never are.
			n.stats.txErrors.Add(uint64(len(bufs) - sent))
			return sent, nil
		}
		n.txFrom, n.txN, n.txErrno = 0, msgs, 0
		for n.txFrom < msgs {
			if err := n.rc.Write(n.writeFn); err != nil {
				n.clearTx(msgs, iovs)
				lost := 0
				for _, k := range n.txMsgFrames[n.txFrom:msgs] {
					lost += k
				}
				n.stats.txErrors.Add(uint64(len(bufs) - sent - frames + lost))
				return sent + frames - lost, errClosed
			}
			if n.txErrno != 0 {
				// One message the kernel refuses must not block the
				// rest: count it and go on.
				k := n.txMsgFrames[n.txFrom]
				n.stats.txErrors.Add(uint64(k))
				if kind := n.txKind[n.txFrom]; kind != netstack.OffloadNone && n.txErrno == unix.EINVAL {
					n.withdraw(kind)
				}
				n.txFrom++
				n.txErrno = 0
			}
		}
		for i := range msgs {
			if n.txKind[i] != netstack.OffloadNone {
				n.stats.txTrains.Add(1)
			}
		}
		n.clearTx(msgs, iovs)
		sent += frames
	}
	n.stats.txFrames.Add(uint64(len(bufs)))
	return len(bufs), nil
}

// trainFits reports whether every frame of train t holds its headers
// and some payload, so that the iovecs can skip them.
func trainFits(frames []*ipsec.Buffer, t netstack.Train) bool {
	l4 := 20 // RFC 9293 §3.1
	if t.Kind == netstack.OffloadUDP {
		l4 = 8 // RFC 768
	}
	if len(frames) < 2 || t.HeaderLen < t.TransportOffset+l4 || t.TransportOffset < ethHeaderLen {
		return false
	}
	for _, b := range frames {
		if b.Len() <= t.HeaderLen {
			return false
		}
	}
	return true
}

// buildMsg makes message i of the batch from the frames of train t,
// using the iovecs from iov on: the virtio header, the first frame whole,
// and the payload of every later one.
func (n *packetNIC) buildMsg(i int, frames []*ipsec.Buffer, t netstack.Train, iov int) {
	v := &zeroVnet
	if t.Kind != netstack.OffloadNone {
		v = &n.txVnet[i]
		vnetForTrain(v, t, frames[0].Bytes())
	}
	n.txIov[iov] = unix.Iovec{Base: &v[0]}
	n.txIov[iov].SetLen(vnetHdrLen)
	for k, b := range frames {
		f := b.Bytes()
		if k > 0 {
			f = f[t.HeaderLen:]
		}
		n.txIov[iov+1+k] = unix.Iovec{}
		if len(f) > 0 {
			n.txIov[iov+1+k].Base = &f[0]
			n.txIov[iov+1+k].SetLen(len(f))
		}
	}
	n.txMsgs[i].hdr = unix.Msghdr{Iov: &n.txIov[iov]}
	n.txMsgs[i].hdr.SetIovlen(1 + len(frames))
	n.txMsgFrames[i], n.txKind[i] = len(frames), t.Kind
}

// withdraw stops offering a train kind the kernel refused.
func (n *packetNIC) withdraw(kind netstack.OffloadKind) {
	for {
		old := n.txKinds.Load()
		upd := old &^ uint32(netstack.OffloadKindsOf(kind))
		if old == upd || n.txKinds.CompareAndSwap(old, upd) {
			break
		}
	}
	n.stats.txOffloadRefused.Add(1)
}

// writeReady sends what is left of the batch; false waits for room.
func (n *packetNIC) writeReady(fd uintptr) bool {
	for {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&n.txMsgs[n.txFrom])), uintptr(n.txN-n.txFrom), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			n.txFrom += int(r)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// The send buffer is full; the poller wakes us when
			// the kernel frees room.
			return false
		}
		// ENOBUFS (a full device queue with PACKET_QDISC_BYPASS) has
		// no wake-up to wait for: the frame is dropped and counted,
		// like any other refusal.
		n.txErrno = errno
		return true
	}
}

// clearTx drops the references to the caller's buffers.
func (n *packetNIC) clearTx(msgs, iovs int) {
	clear(n.txIov[:iovs])
	clear(n.txMsgs[:msgs])
}

// Stats implements Port, adding the kernel's ring counters (which reset
// on every read) to running totals.
func (n *packetNIC) Stats() Stats {
	s := Stats{
		RxFrames: n.stats.rxFrames.Load(), RxGSOFrames: n.stats.rxGSO.Load(), RxChecksums: n.stats.rxChecksums.Load(),
		RxTruncated: n.stats.rxTruncated.Load(), RxBadOffload: n.stats.rxBadOffload.Load(), RxVLAN: n.stats.rxVLAN.Load(),
		RxRingFull: n.stats.rxLoss.Load(), RxScattered: n.stats.rxScattered.Load(), TxFrames: n.stats.txFrames.Load(), TxErrors: n.stats.txErrors.Load(),
		TxTrains: n.stats.txTrains.Load(), TxOffloadRefused: n.stats.txOffloadRefused.Load(),
	}
	n.kstatMu.Lock()
	defer n.kstatMu.Unlock()
	n.rc.Control(func(fd uintptr) {
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			n.kstat.Packets += st.Packets
			n.kstat.Drops += st.Drops
		}
	})
	s.KernelRingDrops, s.KernelRingPackets = uint64(n.kstat.Drops), uint64(n.kstat.Packets)
	return s
}
