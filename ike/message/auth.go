package message

import (
	"errors"
	"fmt"
)

// Authentication payload, RFC 7296 §3.8:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Auth Method   |                RESERVED                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                      Authentication Data                      ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	authMethod = 0
	authData   = 4
)

// AuthMethod is the Auth Method of an AUTH payload (§3.8).
type AuthMethod uint8

const (
	AuthRSASignature     AuthMethod = 1
	AuthSharedKey        AuthMethod = 2 // Shared Key Message Integrity Code
	AuthDSSSignature     AuthMethod = 3
	AuthECDSAP256SHA256  AuthMethod = 9  // RFC 4754
	AuthECDSAP384SHA384  AuthMethod = 10 // RFC 4754
	AuthECDSAP521SHA512  AuthMethod = 11 // RFC 4754
	AuthGenericPassword  AuthMethod = 12 // RFC 6467
	AuthNull             AuthMethod = 13 // RFC 7619
	AuthDigitalSignature AuthMethod = 14 // RFC 7427
)

func (m AuthMethod) String() string {
	switch m {
	case AuthRSASignature:
		return "RSA_SIG"
	case AuthSharedKey:
		return "SHARED_KEY_MIC"
	case AuthDSSSignature:
		return "DSS_SIG"
	case AuthECDSAP256SHA256:
		return "ECDSA_SHA256_P256"
	case AuthECDSAP384SHA384:
		return "ECDSA_SHA384_P384"
	case AuthECDSAP521SHA512:
		return "ECDSA_SHA512_P521"
	case AuthGenericPassword:
		return "GSPM"
	case AuthNull:
		return "NULL_AUTH"
	case AuthDigitalSignature:
		return "DIGITAL_SIGNATURE"
	}
	return fmt.Sprintf("AUTH_METHOD(%d)", uint8(m))
}

// Auth is the Authentication payload (RFC 7296 §3.8). Its reserved octets
// are not covered by any MAC, so they are sent as zero and not kept.
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (*Auth) PayloadType() PayloadType { return PayloadAuth }

func (a *Auth) appendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(a.Method), 0, 0, 0), a.Data...), nil
}

// AppendSignedOctets appends the octets an AUTH payload signs or MACs
// (RFC 7296 §2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//
// realMessage is the sender's first message as sent, octet for octet (the
// IKE_SA_INIT datagram without a non-ESP marker: Message.Raw for a received
// one, Encode's result for a sent one); nonce is the peer's Nonce Data;
// macedID is prf(SK_px, RestOfIDPayload), which key material computes.
func AppendSignedOctets(dst, realMessage, nonce, macedID []byte) []byte {
	dst = append(dst, realMessage...)
	dst = append(dst, nonce...)
	return append(dst, macedID...)
}

// Digital Signature authentication data, RFC 7427 §3:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| ASN.1 Length  | AlgorithmIdentifier ASN.1 object              |
//	+-+-+-+-+-+-+-+-+                                               +
//	~        AlgorithmIdentifier ASN.1 object continuing            ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Signature Value                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// SplitDigitalSignature splits the Data of an AuthDigitalSignature payload
// into the DER AlgorithmIdentifier and the signature value.
func SplitDigitalSignature(data []byte) (algorithm, signature []byte, err error) {
	if len(data) < 1 || int(data[0]) == 0 || len(data)-1 <= int(data[0]) {
		return nil, nil, errors.New("ike/message: malformed digital signature authentication data")
	}
	n := int(data[0])
	return data[1 : 1+n], data[1+n:], nil
}

// AppendDigitalSignature appends AuthDigitalSignature authentication data.
func AppendDigitalSignature(dst, algorithm, signature []byte) ([]byte, error) {
	if len(algorithm) == 0 || len(algorithm) > 255 || len(signature) == 0 {
		return nil, errors.New("ike/message: digital signature needs a 1..255 octet AlgorithmIdentifier and a signature")
	}
	dst = append(dst, byte(len(algorithm)))
	dst = append(dst, algorithm...)
	return append(dst, signature...), nil
}
