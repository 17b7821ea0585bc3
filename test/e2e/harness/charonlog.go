package harness

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// charon's file log at level 4 (ike=4, chd=4) prints every key it derives
// as a hex dump:
//
//	20:18:45.977 11[IKE] <gw-gw|67> Sk_ei secret => 16 bytes @ 0x7f7274008460
//	20:18:45.977 11[IKE] <gw-gw|67>    0: 95 BA DA FE 45 6C 48 AB 7C 8A 96 20 E6 D2 A6 6B  ....ElH.|.. ...k
//
// Lines of different threads interleave, but charon lets only one thread
// at a time work on an IKE_SA, and ike_name = yes prefixes each line with
// it (<conn|N>), so the parser keeps its state per IKE_SA; the proposal
// selected for an SA may be logged by another thread than the keys. The
// role that decides which key protects which direction comes
// from "establishing CHILD_SA name{N}", which only the initiator of that
// CHILD_SA's exchange logs: initiator keys protect initiator-to-responder
// traffic (RFC 7296 section 2.17).
var (
	charonLine  = regexp.MustCompile(`(?:^|\s)(\d+)\[([A-Z]{3})\] (?:<([^>]*)> )?(.*)$`)
	dumpHeader  = regexp.MustCompile(`^(.*) => (\d+) bytes @ `)
	dumpLine    = regexp.MustCompile(`^\s*(\d+): (.*)$`)
	selected    = regexp.MustCompile(`^selected proposal: (IKE|ESP|AH):(\S+)`)
	establish   = regexp.MustCompile(`^establishing CHILD_SA .*\{(\d+)\}`)
	installing  = regexp.MustCompile(`^CHILD_SA .*\{(\d+)\} state change: \S+ => INSTALLING`)
	ikeCreated  = regexp.MustCompile(`^IKE_SA \S+\[(\d+)\] state change: CREATED => CONNECTING`)
	addingSA    = regexp.MustCompile(`^(adding|registering) (inbound|outbound) (ESP|AH) SA`)
	spiLine     = regexp.MustCompile(`^\s+SPI 0x([0-9a-f]{8}), src (\S+) dst (\S+)`)
	octetsDump  = "octets = message + nonce + prf(Sk_px, IDx')"
	skeyseedKey = "SKEYSEED"
)

type hexDump struct {
	name string
	want int
	data []byte
}

type ikeRecord struct {
	ikeID    string
	keys     IKEKeys
	haveSPIs bool
}

type childRecord struct {
	id              string
	encr, integ     string
	encrI, encrR    []byte
	integI, integR  []byte
	inSPI, outSPI   uint32
	inSrc, inDst    netip.Addr
	outSrc, outDst  netip.Addr
	haveIn, haveOut bool
}

type saState struct {
	dump    *hexDump
	ikeProp string
	espProp string
	ike     *ikeRecord
	child   *childRecord
	spiFor  string // "inbound" or "outbound" after an adding/registering line
	// newIKE is the unique id of an IKE_SA this context just created: an
	// IKE rekey derives the new SA's keys in the old SA's context.
	newIKE string
}

// ParseCharonLog extracts IKE and ESP keys from a charon file log written
// at level 4 for ike and chd (StrongSwan configures that). The log shows
// the SPIs of an IKE_SA only through its AUTH octets, so the keys of SAs
// created by an IKE rekey land in IKEWithoutSPIs, by unique id;
// StrongSwan.Keys completes them from --list-sas. ESP SAs need both keys
// and their SPI lines.
func ParseCharonLog(r io.Reader) (*KeySet, error) {
	states := map[string]*saState{}
	initiated := map[string]bool{}
	var ikes []*ikeRecord
	var children []*childRecord
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		m := charonLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		thread, ctx, msg := m[1], m[3], m[4]
		ikeID := ctx
		if i := strings.LastIndexByte(ctx, '|'); i >= 0 {
			ikeID = ctx[i+1:]
		}
		key := ikeID
		if key == "" {
			key = "thread " + thread
		}
		st := states[key]
		if st == nil {
			st = &saState{}
			states[key] = st
		}
		if st.dump != nil {
			if dm := dumpLine.FindStringSubmatch(msg); dm != nil {
				st.dump.data = appendDumpBytes(st.dump.data, dm[2], st.dump.want-len(st.dump.data))
				if len(st.dump.data) >= st.dump.want {
					d := st.dump
					st.dump = nil
					deliverDump(st, ikeID, d, &ikes)
				}
				continue
			}
			st.dump = nil // an incomplete dump: the log was cut
		}
		if dh := dumpHeader.FindStringSubmatch(msg); dh != nil {
			n, _ := strconv.Atoi(dh[2])
			d := &hexDump{name: dh[1], want: n}
			if n == 0 {
				deliverDump(st, ikeID, d, &ikes)
			} else {
				st.dump = d
			}
			continue
		}
		if sm := selected.FindStringSubmatch(msg); sm != nil {
			if sm[1] == "IKE" {
				st.ikeProp = sm[2]
			} else {
				st.espProp = sm[2]
			}
			continue
		}
		if cm := ikeCreated.FindStringSubmatch(msg); cm != nil {
			st.newIKE = cm[1]
			continue
		}
		if em := establish.FindStringSubmatch(msg); em != nil {
			initiated[em[1]] = true
			continue
		}
		if im := installing.FindStringSubmatch(msg); im != nil {
			st.child = &childRecord{id: im[1]}
			st.child.encr, st.child.integ = splitESPProposal(st.espProp)
			children = append(children, st.child)
			continue
		}
		if am := addingSA.FindStringSubmatch(msg); am != nil {
			st.spiFor = am[2]
			continue
		}
		if pm := spiLine.FindStringSubmatch(msg); pm != nil && st.child != nil && st.spiFor != "" {
			spi, _ := strconv.ParseUint(pm[1], 16, 32)
			src, err1 := netip.ParseAddr(pm[2])
			dst, err2 := netip.ParseAddr(pm[3])
			if err1 == nil && err2 == nil {
				c := st.child
				if st.spiFor == "inbound" {
					c.inSPI, c.inSrc, c.inDst, c.haveIn = uint32(spi), src, dst, true
				} else {
					c.outSPI, c.outSrc, c.outDst, c.haveOut = uint32(spi), src, dst, true
				}
			}
			st.spiFor = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading charon log: %w", err)
	}
	ks := &KeySet{}
	for _, r := range ikes {
		switch {
		case len(r.keys.SKei) == 0 || len(r.keys.SKer) == 0:
		case r.haveSPIs:
			ks.IKE = append(ks.IKE, r.keys)
		default:
			if ks.IKEWithoutSPIs == nil {
				ks.IKEWithoutSPIs = map[string]IKEKeys{}
			}
			ks.IKEWithoutSPIs[r.ikeID] = r.keys
		}
	}
	for _, c := range children {
		if !c.haveIn || !c.haveOut || c.encrI == nil || c.encrR == nil {
			continue
		}
		// Initiator keys protect what the CHILD_SA's initiator sends.
		inE, inI, outE, outI := c.encrI, c.integI, c.encrR, c.integR
		if initiated[c.id] {
			inE, inI, outE, outI = c.encrR, c.integR, c.encrI, c.integI
		}
		ks.ESP = append(ks.ESP,
			ESPKeys{SPI: c.inSPI, Src: c.inSrc, Dst: c.inDst, Encr: c.encr, EncrKey: inE, Integ: c.integ, IntegKey: inI},
			ESPKeys{SPI: c.outSPI, Src: c.outSrc, Dst: c.outDst, Encr: c.encr, EncrKey: outE, Integ: c.integ, IntegKey: outI})
	}
	return ks, nil
}

// ParseCharonLogFile is ParseCharonLog on a file.
func ParseCharonLogFile(path string) (*KeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseCharonLog(f)
}

func deliverDump(st *saState, ikeID string, d *hexDump, ikes *[]*ikeRecord) {
	switch d.name {
	case skeyseedKey:
		// A new SKEYSEED starts the keys of a new IKE SA, or of the one an
		// IKE rekey creates.
		id := ikeID
		if st.newIKE != "" {
			id, st.newIKE = st.newIKE, ""
		}
		st.ike = &ikeRecord{ikeID: id}
		st.ike.keys.Encr, st.ike.keys.Integ = splitIKEProposal(st.ikeProp)
		*ikes = append(*ikes, st.ike)
	case "Sk_ei secret", "Sk_er secret", "Sk_ai secret", "Sk_ar secret":
		if st.ike == nil {
			return
		}
		k := &st.ike.keys
		switch d.name {
		case "Sk_ei secret":
			k.SKei = d.data
		case "Sk_er secret":
			k.SKer = d.data
		case "Sk_ai secret":
			k.SKai = d.data
		case "Sk_ar secret":
			k.SKar = d.data
		}
	case octetsDump:
		// The AUTH octets start with the IKE_SA_INIT message; the
		// response's header carries both SPIs (RFC 7296 section 2.15).
		if len(d.data) < 16 || allZero(d.data[8:16]) {
			return
		}
		for i := len(*ikes) - 1; i >= 0; i-- {
			r := (*ikes)[i]
			if r.ikeID == ikeID && !r.haveSPIs {
				copy(r.keys.SPIi[:], d.data[0:8])
				copy(r.keys.SPIr[:], d.data[8:16])
				r.haveSPIs = true
				break
			}
		}
	case "encryption initiator key", "encryption responder key", "integrity initiator key", "integrity responder key":
		c := st.child
		if c == nil {
			return
		}
		switch d.name {
		case "encryption initiator key":
			c.encrI = d.data
		case "encryption responder key":
			c.encrR = d.data
		case "integrity initiator key":
			c.integI = d.data
		case "integrity responder key":
			c.integR = d.data
		}
	}
}

// appendDumpBytes takes up to max bytes from the hex column of a dump line
// ("F0 43 BD ...  ascii"): 16 groups of two hex digits.
func appendDumpBytes(dst []byte, line string, max int) []byte {
	if len(line) > 48 {
		line = line[:48]
	}
	for _, f := range strings.Fields(line) {
		if max <= 0 || len(f) != 2 {
			break
		}
		b, err := hex.DecodeString(f)
		if err != nil {
			break
		}
		dst = append(dst, b[0])
		max--
	}
	return dst
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// splitIKEProposal turns "AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519"
// into the encryption ("AES_CBC_128") and integrity ("HMAC_SHA2_256_128";
// "" for AEAD) algorithm names.
func splitIKEProposal(p string) (encr, integ string) {
	parts := strings.Split(p, "/")
	if len(parts) == 0 {
		return "", ""
	}
	encr = parts[0]
	if len(parts) > 1 && isIntegName(parts[1]) {
		integ = parts[1]
	}
	return encr, integ
}

// splitESPProposal turns "AES_GCM_16_128/NO_EXT_SEQ" into ("AES_GCM_16", "")
// and "AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ" into ("AES_CBC",
// "HMAC_SHA2_256_128"): ESP tables name the cipher without its key size.
func splitESPProposal(p string) (encr, integ string) {
	encr, integ = splitIKEProposal(p)
	if i := strings.LastIndexByte(encr, '_'); i > 0 {
		switch encr[i+1:] {
		case "128", "192", "256":
			encr = encr[:i]
		}
	}
	return encr, integ
}

func isIntegName(s string) bool {
	for _, p := range []string{"HMAC_", "AES_XCBC", "AES_CMAC", "CAMELLIA_XCBC"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
