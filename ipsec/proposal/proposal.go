package proposal

import (
	"errors"
	"fmt"
	"strings"
)

// Encr is an encryption transform with its key size in bits (0 for
// fixed-key ciphers, which carry no Key Length attribute).
type Encr struct {
	ID      EncrID
	KeyBits uint16
}

// Proposal is one configured proposal: for each transform type, the
// acceptable algorithms in order of preference (RFC 7296 §3.3).
type Proposal struct {
	Protocol Protocol
	Encr     []Encr
	PRF      []PRFID
	Integ    []IntegID
	KE       []KEID
	AddKE    [7][]KEID // RFC 9370 additional key exchanges 1..7
	ESN      []bool
}

// Suite is a negotiated proposal: exactly one algorithm of each type.
// Zero values mean "not present" (no PRF for ESP, no integrity with AEAD,
// KENone for a Child SA without PFS).
type Suite struct {
	Protocol Protocol
	Encr     Encr
	PRF      PRFID
	Integ    IntegID
	KE       KEID
	AddKE    [7]KEID
	ESN      bool
}

// Policy says which transforms a device admits (design.md [device]).
type Policy struct {
	AllowLegacy        bool // 3DES, SHA-1, MD5-free legacy groups (MODP1024/1536)
	AllowIntegrityOnly bool // AH, ENCR_NULL and ENCR_NULL_AUTH_AES_GMAC
}

// keyword tables, after strongSwan's proposal_keywords_static.txt.
var encrKeywords = map[string]Encr{
	"3des":             {Encr3DES, 0},
	"null":             {EncrNull, 0},
	"chacha20poly1305": {EncrChaCha20Poly13, 0},
}

var integKeywords = map[string]IntegID{
	"sha":      IntegHMACSHA196,
	"sha1":     IntegHMACSHA196,
	"sha256":   IntegHMACSHA256128,
	"sha2_256": IntegHMACSHA256128,
	"sha384":   IntegHMACSHA384192,
	"sha2_384": IntegHMACSHA384192,
	"sha512":   IntegHMACSHA512256,
	"sha2_512": IntegHMACSHA512256,
	"aesxcbc":  IntegAESXCBC96,
	"aescmac":  IntegAESCMAC96,
}

// ahGMACKeywords name AUTH_AES_*_GMAC. In ESP proposals the same keywords
// mean ENCR_NULL_AUTH_AES_GMAC, as in strongSwan.
var ahGMACKeywords = map[string]IntegID{
	"aes128gmac": IntegAES128GMAC,
	"aes192gmac": IntegAES192GMAC,
	"aes256gmac": IntegAES256GMAC,
}

var prfKeywords = map[string]PRFID{
	"prfsha1":    PRFHMACSHA1,
	"prfsha256":  PRFHMACSHA256,
	"prfsha384":  PRFHMACSHA384,
	"prfsha512":  PRFHMACSHA512,
	"prfaesxcbc": PRFAES128XCBC,
	"prfaescmac": PRFAES128CMAC,
}

var keKeywords = map[string]KEID{
	"modp1024":   KEMODP1024,
	"modp1536":   KEMODP1536,
	"modp2048":   KEMODP2048,
	"modp3072":   KEMODP3072,
	"modp4096":   KEMODP4096,
	"modp6144":   KEMODP6144,
	"modp8192":   KEMODP8192,
	"ecp256":     KEECP256,
	"ecp384":     KEECP384,
	"ecp521":     KEECP521,
	"x25519":     KEX25519,
	"curve25519": KEX25519,
	"mlkem768":   KEMLKEM768,
	"mlkem1024":  KEMLKEM1024,
}

func init() {
	for _, bits := range aesKeys {
		b := fmt.Sprint(bits)
		encrKeywords["aes"+b] = Encr{EncrAESCBC, bits}
		encrKeywords["aes"+b+"ctr"] = Encr{EncrAESCTR, bits}
		encrKeywords["aes"+b+"gmac"] = Encr{EncrNullAuthGMAC, bits}
		for _, v := range []struct {
			ccm, gcm EncrID
			icv      []string
		}{
			{EncrAESCCM8, EncrAESGCM8, []string{"8", "64"}},
			{EncrAESCCM12, EncrAESGCM12, []string{"12", "96"}},
			{EncrAESCCM16, EncrAESGCM16, []string{"16", "128", ""}},
		} {
			for _, s := range v.icv {
				encrKeywords["aes"+b+"ccm"+s] = Encr{v.ccm, bits}
				encrKeywords["aes"+b+"gcm"+s] = Encr{v.gcm, bits}
			}
		}
	}
	encrKeywords["aes"] = Encr{EncrAESCBC, 128}
}

// prfForInteg is strongSwan's rule for IKE proposals that name integrity
// algorithms but no PRF: use the PRF of the same family.
var prfForInteg = map[IntegID]PRFID{
	IntegHMACSHA196:    PRFHMACSHA1,
	IntegAESXCBC96:     PRFAES128XCBC,
	IntegAESCMAC96:     PRFAES128CMAC,
	IntegHMACSHA256128: PRFHMACSHA256,
	IntegHMACSHA384192: PRFHMACSHA384,
	IntegHMACSHA512256: PRFHMACSHA512,
}

// Parse parses one proposal string in strongSwan's syntax for the given
// protocol. A string that mixes AEAD and non-AEAD encryption yields two
// proposals, AEAD first, as strongSwan does. "default" is not accepted:
// bitw's defaults live in the config layer, where they are documented.
func Parse(s string, proto Protocol) ([]Proposal, error) {
	if s == "" {
		return nil, errors.New("empty proposal")
	}
	p := Proposal{Protocol: proto}
	for _, tok := range strings.Split(strings.ToLower(s), "-") {
		if err := p.add(tok); err != nil {
			return nil, err
		}
	}
	var aead, plain []Encr
	for _, e := range p.Encr {
		if encrInfo[e.ID].AEAD {
			aead = append(aead, e)
		} else {
			plain = append(plain, e)
		}
	}
	var out []Proposal
	if len(aead) > 0 && len(plain) > 0 {
		a, b := p.clone(), p.clone()
		a.Encr, a.Integ = aead, nil
		b.Encr = plain
		out = []Proposal{a, b}
	} else {
		if len(aead) > 0 {
			p.Integ = nil // strongSwan drops integrity from AEAD proposals
		}
		out = []Proposal{p}
	}
	for i := range out {
		if err := out[i].complete(); err != nil {
			return nil, fmt.Errorf("proposal %q: %w", s, err)
		}
	}
	return out, nil
}

func (p Proposal) clone() Proposal {
	c := p
	c.Encr = append([]Encr(nil), p.Encr...)
	c.PRF = append([]PRFID(nil), p.PRF...)
	c.Integ = append([]IntegID(nil), p.Integ...)
	c.KE = append([]KEID(nil), p.KE...)
	c.ESN = append([]bool(nil), p.ESN...)
	for i := range p.AddKE {
		c.AddKE[i] = append([]KEID(nil), p.AddKE[i]...)
	}
	return c
}

func (p *Proposal) add(tok string) error {
	if strings.HasPrefix(tok, "ke") && len(tok) > 4 && tok[3] == '_' && tok[2] >= '1' && tok[2] <= '7' {
		k, ok := keKeywords[tok[4:]]
		if !ok {
			return fmt.Errorf("unknown key exchange %q in %q", tok[4:], tok)
		}
		n := tok[2] - '1'
		p.AddKE[n] = append(p.AddKE[n], k)
		return nil
	}
	if g, ok := ahGMACKeywords[tok]; ok && p.Protocol == ProtoAH {
		p.Integ = append(p.Integ, g)
		return nil
	}
	if e, ok := encrKeywords[tok]; ok {
		if p.Protocol == ProtoAH {
			return fmt.Errorf("AH has no encryption, but %q is a cipher", tok)
		}
		p.Encr = append(p.Encr, e)
		return nil
	}
	if a, ok := integKeywords[tok]; ok {
		p.Integ = append(p.Integ, a)
		return nil
	}
	if f, ok := prfKeywords[tok]; ok {
		if p.Protocol != ProtoIKE {
			return fmt.Errorf("%q is a PRF, which only IKE proposals take", tok)
		}
		p.PRF = append(p.PRF, f)
		return nil
	}
	if k, ok := keKeywords[tok]; ok {
		p.KE = append(p.KE, k)
		return nil
	}
	switch tok {
	case "esn":
		p.ESN = append(p.ESN, true)
		return nil
	case "noesn":
		p.ESN = append(p.ESN, false)
		return nil
	case "none", "modpnone":
		p.KE = append(p.KE, KENone)
		return nil
	}
	return fmt.Errorf("unknown algorithm keyword %q", tok)
}

// complete applies strongSwan's implied transforms and checks that the
// proposal is usable for its protocol.
func (p *Proposal) complete() error {
	switch p.Protocol {
	case ProtoIKE:
		if len(p.Encr) == 0 {
			return errors.New("an IKE proposal needs an encryption algorithm")
		}
		if len(p.ESN) > 0 {
			return errors.New("esn/noesn apply to ESP and AH only")
		}
		if !encrInfo[p.Encr[0].ID].AEAD && len(p.Integ) == 0 {
			return errors.New("a non-AEAD IKE proposal needs an integrity algorithm")
		}
		if len(p.PRF) == 0 {
			for _, a := range p.Integ {
				if f, ok := prfForInteg[a]; ok && !containsPRF(p.PRF, f) {
					p.PRF = append(p.PRF, f)
				}
			}
		}
		if len(p.PRF) == 0 {
			return errors.New("an AEAD IKE proposal needs a PRF, e.g. prfsha256")
		}
		if len(p.KE) == 0 {
			return errors.New("an IKE proposal needs a key exchange method, e.g. x25519")
		}
		for _, k := range p.KE {
			if k == KENone {
				return errors.New("an IKE proposal cannot use key exchange none")
			}
			if keInfo[k].KEM {
				return fmt.Errorf("%s is a KEM and can only be an additional key exchange (ke1_%s)", k, keKeyword(k))
			}
		}
		for _, e := range p.Encr {
			if e.ID == EncrNull || e.ID == EncrNullAuthGMAC {
				return fmt.Errorf("%s cannot protect IKE messages", e.ID)
			}
			if e.ID == Encr3DES {
				// Legacy 3DES is kept for ESP peers only; bitw's SK
				// payload ciphers (ike/keymat) do not include it.
				return errors.New("3des is supported in ESP proposals only, not for IKE")
			}
		}
	case ProtoESP:
		if len(p.Encr) == 0 {
			return errors.New("an ESP proposal needs an encryption algorithm (null for integrity only)")
		}
		if !encrInfo[p.Encr[0].ID].AEAD && len(p.Integ) == 0 {
			return errors.New("a non-AEAD ESP proposal needs an integrity algorithm")
		}
	case ProtoAH:
		if len(p.Integ) == 0 {
			return errors.New("an AH proposal needs an integrity algorithm")
		}
	default:
		return fmt.Errorf("unknown protocol %d", p.Protocol)
	}
	if p.Protocol != ProtoIKE && len(p.ESN) == 0 {
		p.ESN = []bool{false}
	}
	return nil
}

func containsPRF(l []PRFID, f PRFID) bool {
	for _, x := range l {
		if x == f {
			return true
		}
	}
	return false
}

// Check returns an error naming the first transform the policy does not
// admit. The SA installer and the IKE negotiator both call it, so a
// disallowed transform can never reach the data plane.
func (s Suite) Check(pol Policy) error {
	if s.Protocol == ProtoAH && !pol.AllowIntegrityOnly {
		return errors.New("AH carries data in clear; set allow_integrity_only to use it")
	}
	if s.Protocol != ProtoAH {
		info, ok := encrInfo[s.Encr.ID]
		if !ok {
			return fmt.Errorf("unsupported encryption %s", s.Encr.ID)
		}
		if !s.Encr.ID.ValidKeyBits(s.Encr.KeyBits) {
			return fmt.Errorf("%s does not take a %d-bit key", s.Encr.ID, s.Encr.KeyBits)
		}
		if info.Legacy && !pol.AllowLegacy {
			return fmt.Errorf("%s is legacy; set allow_legacy to use it", s.Encr.ID)
		}
		if info.NoConf && !pol.AllowIntegrityOnly {
			return fmt.Errorf("%s carries data in clear; set allow_integrity_only to use it", s.Encr.ID)
		}
		if info.AEAD && s.Integ != IntegNone {
			return fmt.Errorf("%s is combined mode and takes no integrity transform", s.Encr.ID)
		}
		if !info.AEAD && s.Integ == IntegNone {
			return fmt.Errorf("%s needs an integrity transform", s.Encr.ID)
		}
	}
	if s.Integ != IntegNone {
		info, ok := integInfo[s.Integ]
		if !ok {
			return fmt.Errorf("unsupported integrity %s", s.Integ)
		}
		if info.Legacy && !pol.AllowLegacy {
			return fmt.Errorf("%s is legacy; set allow_legacy to use it", s.Integ)
		}
		if info.GMAC && s.Protocol != ProtoAH {
			return fmt.Errorf("%s is defined for AH only (ESP uses ENCR_NULL_AUTH_AES_GMAC)", s.Integ)
		}
	}
	if s.Protocol == ProtoIKE {
		info, ok := prfInfo[s.PRF]
		if !ok {
			return fmt.Errorf("unsupported PRF %s", s.PRF)
		}
		if info.Legacy && !pol.AllowLegacy {
			return fmt.Errorf("%s is legacy; set allow_legacy to use it", s.PRF)
		}
	}
	if err := checkKE(s.KE, pol); err != nil {
		return err
	}
	for _, k := range s.AddKE {
		if err := checkKE(k, pol); err != nil {
			return err
		}
	}
	return nil
}

func checkKE(k KEID, pol Policy) error {
	if k == KENone {
		return nil
	}
	info, ok := keInfo[k]
	if !ok {
		return fmt.Errorf("unsupported key exchange %s", k)
	}
	if info.Legacy && !pol.AllowLegacy {
		return fmt.Errorf("%s is legacy; set allow_legacy to use it", k)
	}
	return nil
}

// Check reports the first transform in p that pol forbids or bitw lacks,
// so configuration errors surface at load time.
func (p Proposal) Check(pol Policy) error {
	for _, e := range p.Encr {
		s := Suite{Protocol: p.Protocol, Encr: e}
		if !encrInfo[e.ID].AEAD {
			s.Integ = IntegHMACSHA256128
		}
		if p.Protocol == ProtoIKE {
			s.PRF = PRFHMACSHA256
		}
		if err := s.Check(pol); err != nil {
			return err
		}
	}
	for _, a := range p.Integ {
		s := Suite{Protocol: p.Protocol, Encr: Encr{EncrAESCBC, 128}, Integ: a}
		if p.Protocol == ProtoIKE {
			s.PRF = PRFHMACSHA256
		}
		if p.Protocol == ProtoAH {
			s.Encr = Encr{}
		}
		if err := s.Check(pol); err != nil {
			return err
		}
	}
	for _, f := range p.PRF {
		s := Suite{Protocol: ProtoIKE, Encr: Encr{EncrAESGCM16, 128}, PRF: f}
		if err := s.Check(pol); err != nil {
			return err
		}
	}
	for _, k := range p.KE {
		if err := checkKE(k, pol); err != nil {
			return err
		}
	}
	for _, l := range p.AddKE {
		for _, k := range l {
			if err := checkKE(k, pol); err != nil {
				return err
			}
		}
	}
	return nil
}

// String prints the suite in the config's keyword syntax, as the status
// JSON does: "aes256gcm16-prfsha384-ecp384", "aes128-sha256-esn".
func (s Suite) String() string {
	var parts []string
	if s.Protocol != ProtoAH {
		parts = append(parts, EncrKeyword(s.Encr))
	}
	if s.Integ != IntegNone {
		parts = append(parts, integKeyword(s.Integ))
	}
	if s.Protocol == ProtoIKE && s.PRF != 0 {
		parts = append(parts, prfKeyword(s.PRF))
	}
	if s.KE != KENone {
		parts = append(parts, keKeyword(s.KE))
	}
	for i, k := range s.AddKE {
		if k != KENone {
			parts = append(parts, fmt.Sprintf("ke%d_%s", i+1, keKeyword(k)))
		}
	}
	if s.ESN {
		parts = append(parts, "esn")
	}
	return strings.Join(parts, "-")
}

// String prints the proposal in keyword syntax, every alternative listed.
func (p Proposal) String() string {
	var parts []string
	for _, e := range p.Encr {
		parts = append(parts, EncrKeyword(e))
	}
	for _, a := range p.Integ {
		parts = append(parts, integKeyword(a))
	}
	for _, f := range p.PRF {
		parts = append(parts, prfKeyword(f))
	}
	for _, k := range p.KE {
		parts = append(parts, keKeyword(k))
	}
	for i, l := range p.AddKE {
		for _, k := range l {
			parts = append(parts, fmt.Sprintf("ke%d_%s", i+1, keKeyword(k)))
		}
	}
	if p.Protocol != ProtoIKE {
		for _, e := range p.ESN {
			if e {
				parts = append(parts, "esn")
			} else {
				parts = append(parts, "noesn")
			}
		}
	}
	return strings.Join(parts, "-")
}

// EncrKeyword returns strongSwan's keyword for an encryption transform.
func EncrKeyword(e Encr) string {
	b := fmt.Sprint(e.KeyBits)
	switch e.ID {
	case EncrAESCBC:
		return "aes" + b
	case EncrAESCTR:
		return "aes" + b + "ctr"
	case EncrAESCCM8:
		return "aes" + b + "ccm8"
	case EncrAESCCM12:
		return "aes" + b + "ccm12"
	case EncrAESCCM16:
		return "aes" + b + "ccm16"
	case EncrAESGCM8:
		return "aes" + b + "gcm8"
	case EncrAESGCM12:
		return "aes" + b + "gcm12"
	case EncrAESGCM16:
		return "aes" + b + "gcm16"
	case EncrNullAuthGMAC:
		return "aes" + b + "gmac"
	case EncrChaCha20Poly13:
		return "chacha20poly1305"
	case Encr3DES:
		return "3des"
	case EncrNull:
		return "null"
	}
	return strings.ToLower(e.ID.String())
}

func integKeyword(a IntegID) string {
	switch a {
	case IntegHMACSHA196:
		return "sha1"
	case IntegHMACSHA256128:
		return "sha256"
	case IntegHMACSHA384192:
		return "sha384"
	case IntegHMACSHA512256:
		return "sha512"
	case IntegAESXCBC96:
		return "aesxcbc"
	case IntegAESCMAC96:
		return "aescmac"
	case IntegAES128GMAC:
		return "aes128gmac"
	case IntegAES192GMAC:
		return "aes192gmac"
	case IntegAES256GMAC:
		return "aes256gmac"
	}
	return strings.ToLower(a.String())
}

func prfKeyword(f PRFID) string {
	for k, v := range prfKeywords {
		if v == f {
			return k
		}
	}
	return strings.ToLower(f.String())
}

func keKeyword(k KEID) string {
	if k == KEX25519 {
		return "x25519"
	}
	for kw, v := range keKeywords {
		if v == k {
			return kw
		}
	}
	return strings.ToLower(k.String())
}
