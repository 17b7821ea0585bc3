// Package proposal holds the IANA IKEv2 transform registries that ipsec/
// and ike/ share, and parses and prints proposals in strongSwan's keyword
// syntax ("aes128gcm16-prfsha256-x25519").
//
// It is a leaf package: spec constants and their properties, nothing else.
package proposal

import "fmt"

// Protocol is the IKEv2 Security Protocol ID (RFC 7296 §3.3.1).
type Protocol uint8

const (
	ProtoIKE Protocol = 1
	ProtoAH  Protocol = 2
	ProtoESP Protocol = 3
)

func (p Protocol) String() string {
	switch p {
	case ProtoIKE:
		return "IKE"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	}
	return fmt.Sprintf("PROTO_%d", uint8(p))
}

// TransformType is the IKEv2 transform type (RFC 7296 §3.3.2, RFC 9370 §2.2).
type TransformType uint8

const (
	TypeEncr   TransformType = 1
	TypePRF    TransformType = 2
	TypeInteg  TransformType = 3
	TypeKE     TransformType = 4 // "Diffie-Hellman Group" before RFC 9370
	TypeESN    TransformType = 5
	TypeAddKE1 TransformType = 6 // Additional Key Exchange 1..7 are 6..12
	TypeAddKE7 TransformType = 12
)

func (t TransformType) String() string {
	switch {
	case t == TypeEncr:
		return "ENCR"
	case t == TypePRF:
		return "PRF"
	case t == TypeInteg:
		return "INTEG"
	case t == TypeKE:
		return "KE"
	case t == TypeESN:
		return "ESN"
	case t >= TypeAddKE1 && t <= TypeAddKE7:
		return fmt.Sprintf("ADDKE%d", t-TypeAddKE1+1)
	}
	return fmt.Sprintf("TRANSFORM_TYPE_%d", uint8(t))
}

// AttrKeyLength is the Key Length transform attribute type (RFC 7296 §3.3.5).
const AttrKeyLength = 14

// EncrID is an IKEv2 encryption algorithm transform ID.
type EncrID uint16

const (
	EncrDES            EncrID = 2
	Encr3DES           EncrID = 3  // RFC 2451
	EncrNull           EncrID = 11 // RFC 2410
	EncrAESCBC         EncrID = 12 // RFC 3602
	EncrAESCTR         EncrID = 13 // RFC 3686
	EncrAESCCM8        EncrID = 14 // RFC 4309
	EncrAESCCM12       EncrID = 15
	EncrAESCCM16       EncrID = 16
	EncrAESGCM8        EncrID = 18 // RFC 4106
	EncrAESGCM12       EncrID = 19
	EncrAESGCM16       EncrID = 20
	EncrNullAuthGMAC   EncrID = 21 // RFC 4543 ENCR_NULL_AUTH_AES_GMAC
	EncrChaCha20Poly13 EncrID = 28 // RFC 7634
)

// PRFID is an IKEv2 pseudorandom function transform ID.
type PRFID uint16

const (
	PRFHMACMD5    PRFID = 1
	PRFHMACSHA1   PRFID = 2
	PRFAES128XCBC PRFID = 4 // RFC 4434
	PRFHMACSHA256 PRFID = 5 // RFC 4868
	PRFHMACSHA384 PRFID = 6
	PRFHMACSHA512 PRFID = 7
	PRFAES128CMAC PRFID = 8 // RFC 4615
)

// IntegID is an IKEv2 integrity algorithm transform ID.
type IntegID uint16

const (
	IntegNone          IntegID = 0
	IntegHMACMD596     IntegID = 1
	IntegHMACSHA196    IntegID = 2  // RFC 2404
	IntegAESXCBC96     IntegID = 5  // RFC 3566
	IntegAESCMAC96     IntegID = 8  // RFC 4494
	IntegAES128GMAC    IntegID = 9  // RFC 4543
	IntegAES192GMAC    IntegID = 10 // RFC 4543
	IntegAES256GMAC    IntegID = 11 // RFC 4543
	IntegHMACSHA256128 IntegID = 12 // RFC 4868
	IntegHMACSHA384192 IntegID = 13
	IntegHMACSHA512256 IntegID = 14
)

// KEID is an IKEv2 key exchange method (Diffie-Hellman group) transform ID.
type KEID uint16

const (
	KENone      KEID = 0
	KEMODP768   KEID = 1
	KEMODP1024  KEID = 2 // RFC 2409
	KEMODP1536  KEID = 5 // RFC 3526
	KEMODP2048  KEID = 14
	KEMODP3072  KEID = 15
	KEMODP4096  KEID = 16
	KEMODP6144  KEID = 17
	KEMODP8192  KEID = 18
	KEECP256    KEID = 19 // RFC 5903
	KEECP384    KEID = 20
	KEECP521    KEID = 21
	KEX25519    KEID = 31 // RFC 8031
	KEX448      KEID = 32
	KEMLKEM512  KEID = 35 // draft-ietf-ipsecme-ikev2-mlkem
	KEMLKEM768  KEID = 36
	KEMLKEM1024 KEID = 37
)

// ESN values of transform type 5 (RFC 7296 §3.3.2).
const (
	ESNNo  uint16 = 0
	ESNYes uint16 = 1
)

// EncrInfo describes an encryption transform as ESP and the SK payload use it.
type EncrInfo struct {
	Name     string   // IANA name, for logs
	KeyBits  []uint16 // allowed key sizes; nil when the algorithm has a fixed key
	FixedKey uint16   // key bits when KeyBits is nil
	SaltLen  int      // octets of keying material after the key (RFC 4106 §8.1 etc.)
	IVLen    int      // octets of IV carried in each packet
	Block    int      // padding boundary (RFC 4303 §2.4); at least 4
	ICVLen   int      // AEAD tag length; 0 for non-AEAD ciphers
	AEAD     bool     // combined mode: needs no integrity transform
	NoConf   bool     // carries data in clear (NULL, NULL_AUTH_AES_GMAC)
	Legacy   bool     // admitted only with allow_legacy
	Keyword  string   // strongSwan keyword prefix, see EncrKeyword
}

var aesKeys = []uint16{128, 192, 256}

var encrInfo = map[EncrID]EncrInfo{
	Encr3DES:           {Name: "ENCR_3DES", FixedKey: 192, IVLen: 8, Block: 8, Legacy: true},
	EncrNull:           {Name: "ENCR_NULL", Block: 4, NoConf: true},
	EncrAESCBC:         {Name: "ENCR_AES_CBC", KeyBits: aesKeys, IVLen: 16, Block: 16},
	EncrAESCTR:         {Name: "ENCR_AES_CTR", KeyBits: aesKeys, SaltLen: 4, IVLen: 8, Block: 4},
	EncrAESCCM8:        {Name: "ENCR_AES_CCM_8", KeyBits: aesKeys, SaltLen: 3, IVLen: 8, Block: 4, ICVLen: 8, AEAD: true},
	EncrAESCCM12:       {Name: "ENCR_AES_CCM_12", KeyBits: aesKeys, SaltLen: 3, IVLen: 8, Block: 4, ICVLen: 12, AEAD: true},
	EncrAESCCM16:       {Name: "ENCR_AES_CCM_16", KeyBits: aesKeys, SaltLen: 3, IVLen: 8, Block: 4, ICVLen: 16, AEAD: true},
	EncrAESGCM8:        {Name: "ENCR_AES_GCM_8", KeyBits: aesKeys, SaltLen: 4, IVLen: 8, Block: 4, ICVLen: 8, AEAD: true},
	EncrAESGCM12:       {Name: "ENCR_AES_GCM_12", KeyBits: aesKeys, SaltLen: 4, IVLen: 8, Block: 4, ICVLen: 12, AEAD: true},
	EncrAESGCM16:       {Name: "ENCR_AES_GCM_16", KeyBits: aesKeys, SaltLen: 4, IVLen: 8, Block: 4, ICVLen: 16, AEAD: true},
	EncrNullAuthGMAC:   {Name: "ENCR_NULL_AUTH_AES_GMAC", KeyBits: aesKeys, SaltLen: 4, IVLen: 8, Block: 4, ICVLen: 16, AEAD: true, NoConf: true},
	EncrChaCha20Poly13: {Name: "ENCR_CHACHA20_POLY1305", FixedKey: 256, SaltLen: 4, IVLen: 8, Block: 4, ICVLen: 16, AEAD: true},
}

// Info returns the properties of a supported encryption transform.
func (e EncrID) Info() (EncrInfo, bool) {
	i, ok := encrInfo[e]
	return i, ok
}

func (e EncrID) String() string {
	if i, ok := encrInfo[e]; ok {
		return i.Name
	}
	if e == EncrDES {
		return "ENCR_DES"
	}
	return fmt.Sprintf("ENCR_%d", uint16(e))
}

// ValidKeyBits reports whether bits is a key size the algorithm admits. Zero
// means "no Key Length attribute", which is valid only for fixed-key ciphers.
func (e EncrID) ValidKeyBits(bits uint16) bool {
	i, ok := encrInfo[e]
	if !ok {
		return false
	}
	if i.KeyBits == nil {
		return bits == 0 || bits == i.FixedKey
	}
	for _, k := range i.KeyBits {
		if k == bits {
			return true
		}
	}
	return false
}

// KeyLen is the octets of keying material the cipher takes from KEYMAT:
// the key and then any salt (RFC 7296 §2.17, RFC 4106 §8.1).
func (e EncrID) KeyLen(bits uint16) int {
	i := encrInfo[e]
	if bits == 0 {
		bits = i.FixedKey
	}
	return int(bits)/8 + i.SaltLen
}

// IntegInfo describes an integrity transform.
type IntegInfo struct {
	Name   string
	KeyLen int // octets of keying material (GMAC: key and 4-octet salt, RFC 4543 §7)
	ICVLen int // octets of truncated output
	Legacy bool
	GMAC   bool // AUTH_AES_*_GMAC: carries an 8-octet IV before the ICV in AH
}

var integInfo = map[IntegID]IntegInfo{
	IntegHMACSHA196:    {Name: "AUTH_HMAC_SHA1_96", KeyLen: 20, ICVLen: 12, Legacy: true},
	IntegAESXCBC96:     {Name: "AUTH_AES_XCBC_96", KeyLen: 16, ICVLen: 12},
	IntegAESCMAC96:     {Name: "AUTH_AES_CMAC_96", KeyLen: 16, ICVLen: 12},
	IntegAES128GMAC:    {Name: "AUTH_AES_128_GMAC", KeyLen: 20, ICVLen: 16, GMAC: true},
	IntegAES192GMAC:    {Name: "AUTH_AES_192_GMAC", KeyLen: 28, ICVLen: 16, GMAC: true},
	IntegAES256GMAC:    {Name: "AUTH_AES_256_GMAC", KeyLen: 36, ICVLen: 16, GMAC: true},
	IntegHMACSHA256128: {Name: "AUTH_HMAC_SHA2_256_128", KeyLen: 32, ICVLen: 16},
	IntegHMACSHA384192: {Name: "AUTH_HMAC_SHA2_384_192", KeyLen: 48, ICVLen: 24},
	IntegHMACSHA512256: {Name: "AUTH_HMAC_SHA2_512_256", KeyLen: 64, ICVLen: 32},
}

// Info returns the properties of a supported integrity transform.
func (a IntegID) Info() (IntegInfo, bool) {
	i, ok := integInfo[a]
	return i, ok
}

func (a IntegID) String() string {
	if i, ok := integInfo[a]; ok {
		return i.Name
	}
	switch a {
	case IntegNone:
		return "NONE"
	case IntegHMACMD596:
		return "AUTH_HMAC_MD5_96"
	}
	return fmt.Sprintf("AUTH_%d", uint16(a))
}

// PRFInfo describes a pseudorandom function.
type PRFInfo struct {
	Name   string
	KeyLen int // preferred key length, used for SK_d, SK_pi and SK_pr (RFC 7296 §2.14)
	OutLen int
	Legacy bool
}

var prfInfo = map[PRFID]PRFInfo{
	PRFHMACSHA1:   {Name: "PRF_HMAC_SHA1", KeyLen: 20, OutLen: 20, Legacy: true},
	PRFAES128XCBC: {Name: "PRF_AES128_XCBC", KeyLen: 16, OutLen: 16},
	PRFHMACSHA256: {Name: "PRF_HMAC_SHA2_256", KeyLen: 32, OutLen: 32},
	PRFHMACSHA384: {Name: "PRF_HMAC_SHA2_384", KeyLen: 48, OutLen: 48},
	PRFHMACSHA512: {Name: "PRF_HMAC_SHA2_512", KeyLen: 64, OutLen: 64},
	PRFAES128CMAC: {Name: "PRF_AES128_CMAC", KeyLen: 16, OutLen: 16},
}

// Info returns the properties of a supported PRF.
func (p PRFID) Info() (PRFInfo, bool) {
	i, ok := prfInfo[p]
	return i, ok
}

func (p PRFID) String() string {
	if i, ok := prfInfo[p]; ok {
		return i.Name
	}
	if p == PRFHMACMD5 {
		return "PRF_HMAC_MD5"
	}
	return fmt.Sprintf("PRF_%d", uint16(p))
}

// KEInfo describes a key exchange method.
type KEInfo struct {
	Name   string
	KEM    bool // a key encapsulation mechanism (RFC 9370): only as an additional exchange
	Legacy bool
}

var keInfo = map[KEID]KEInfo{
	KEMODP1024:  {Name: "MODP_1024", Legacy: true},
	KEMODP1536:  {Name: "MODP_1536", Legacy: true},
	KEMODP2048:  {Name: "MODP_2048"},
	KEMODP3072:  {Name: "MODP_3072"},
	KEMODP4096:  {Name: "MODP_4096"},
	KEMODP6144:  {Name: "MODP_6144"},
	KEMODP8192:  {Name: "MODP_8192"},
	KEECP256:    {Name: "ECP_256"},
	KEECP384:    {Name: "ECP_384"},
	KEECP521:    {Name: "ECP_521"},
	KEX25519:    {Name: "CURVE_25519"},
	KEMLKEM768:  {Name: "ML_KEM_768", KEM: true},
	KEMLKEM1024: {Name: "ML_KEM_1024", KEM: true},
}

// Info returns the properties of a supported key exchange method.
func (k KEID) Info() (KEInfo, bool) {
	i, ok := keInfo[k]
	return i, ok
}

func (k KEID) String() string {
	if i, ok := keInfo[k]; ok {
		return i.Name
	}
	switch k {
	case KENone:
		return "NONE"
	case KEMODP768:
		return "MODP_768"
	case KEX448:
		return "CURVE_448"
	case KEMLKEM512:
		return "ML_KEM_512"
	}
	return fmt.Sprintf("KE_%d", uint16(k))
}
