package keymat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/bitw-dev/bitw/ike/message"
)

// keyPad is the fixed string RFC 7296 §2.15 mixes into a shared secret.
const keyPad = "Key Pad for IKEv2"

// SignedOctets assembles the octets an AUTH payload covers (RFC 7296
// §2.15, RFC 9242 §3.3.2):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI [| IntAuth]
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR [| IntAuth]
//	MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//
// signer says whose AUTH it is: true for the initiator's (built by the
// initiator, checked by the responder). realMessage is the signer's
// IKE_SA_INIT message exactly as sent, restOfID the signer's ID payload
// after its generic header (ID Type, RESERVED, Identification Data), and
// intAuth the IntAuth octets (IntAuth.Octets), nil without
// IKE_INTERMEDIATE. k must be the latest generation, whose SK_p keys
// RFC 9370 §2.2.2 says IKE_AUTH uses.
func (k *IKEKeys) SignedOctets(initiator bool, realMessage, restOfID, intAuth []byte) []byte {
	nonce, skp := k.Nr, k.SKpi
	if !initiator {
		nonce, skp = k.Ni, k.SKpr
	}
	return SignedOctets(k.PRF, realMessage, nonce, skp, restOfID, intAuth)
}

// SignedOctets is the method's arithmetic with every input explicit:
// realMessage | peerNonce | prf(skp, restOfID) | intAuth.
func SignedOctets(prf PRF, realMessage, peerNonce, skp, restOfID, intAuth []byte) []byte {
	out := make([]byte, 0, len(realMessage)+len(peerNonce)+prf.Size()+len(intAuth))
	out = message.AppendSignedOctets(out, realMessage, peerNonce, prf.Compute(skp, restOfID))
	return append(out, intAuth...)
}

// SharedKeyAuth returns the AUTH data for shared-key authentication
// (RFC 7296 §2.15):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//
// The same computation serves EAP (with the MSK as the secret) and NULL
// authentication (RFC 7619 §2.1, with SK_pi or SK_pr). Compare a received
// value with crypto/subtle.
func SharedKeyAuth(prf PRF, secret, signedOctets []byte) []byte {
	inner := prf.Compute(secret, []byte(keyPad))
	defer clear(inner)
	return prf.Compute(inner, signedOctets)
}

// IntAuth accumulates the RFC 9242 §3.3.2 authentication of
// IKE_INTERMEDIATE messages, which IKE_AUTH then signs:
//
//	IntAuth_i1 = prf(SK_pi1,              IntAuth_i1A [| IntAuth_i1P])
//	IntAuth_iN = prf(SK_piN, IntAuth_iN-1 | IntAuth_iNA [| IntAuth_iNP])
//	(and IntAuth_rN alike with SK_pr)
//	IntAuth    = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID
//
// SK_piN and SK_prN are the keys of the generation that protects exchange
// N, before any update the exchange's own key exchange brings: the
// generation whose Ciphers sealed and opened the messages. strongSwan and
// libreswan compute it so, when each message is built or parsed.
type IntAuth struct {
	I, R []byte // IntAuth_iN and IntAuth_rN; nil before the first exchange
}

// AddInitiator folds in an IKE_INTERMEDIATE request (the original
// initiator's message); data is IntAuthData of that message and k the
// generation that protected it.
func (a *IntAuth) AddInitiator(k *IKEKeys, data []byte) {
	a.I = k.PRF.Compute(k.SKpi, a.I, data)
}

// AddResponder folds in an IKE_INTERMEDIATE response.
func (a *IntAuth) AddResponder(k *IKEKeys, data []byte) {
	a.R = k.PRF.Compute(k.SKpr, a.R, data)
}

// Octets returns IntAuth_iN | IntAuth_rN | IKE_AUTH_MID for SignedOctets,
// where authMessageID is the Message ID of the first IKE_AUTH request. It
// returns nil when no IKE_INTERMEDIATE exchange took place, and then the
// AUTH octets are exactly RFC 7296's.
func (a *IntAuth) Octets(authMessageID uint32) []byte {
	if a.I == nil && a.R == nil {
		return nil
	}
	return binary.BigEndian.AppendUint32(concat(a.I, a.R), authMessageID)
}

// Offsets of the two length fields IntAuthData rewrites.
//
// IKE header (RFC 7296 §3.1), Length at octet 24:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Encrypted payload header (RFC 7296 §3.14), Payload Length at octet 2:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ikeHeaderLen  = 28
	ikeLengthOff  = 24
	genericHdrLen = 4
	payloadLenOff = 2
	minIntAuthAAD = ikeHeaderLen + genericHdrLen
)

// IntAuthData returns IntAuth_[i/r]*A | IntAuth_[i/r]*P of one
// IKE_INTERMEDIATE message (RFC 9242 §3.3.2, Figure 1). aad is the
// message from the first octet of the IKE header to the last octet of the
// Encrypted payload header (what message.Cipher takes as aad); inner is
// the decrypted inner payloads, without IV, padding, Pad Length or ICV.
// The IKE header Length and the Encrypted payload's Payload Length are
// rewritten as if IV, padding, Pad Length and ICV were absent. A message
// that arrived in fragments (RFC 7383) is passed as the unfragmented
// message it reassembles to. aad is not modified.
func IntAuthData(aad, inner []byte) ([]byte, error) {
	if len(aad) < minIntAuthAAD {
		return nil, errors.New("keymat: IntAuth: shorter than an IKE header and an Encrypted payload header")
	}
	total := len(aad) + len(inner)
	skLen := genericHdrLen + len(inner)
	if uint64(total) > math.MaxUint32 || skLen > math.MaxUint16 {
		return nil, fmt.Errorf("keymat: IntAuth: %d octets of inner payloads do not fit one Encrypted payload", len(inner))
	}
	out := concat(aad, inner)
	binary.BigEndian.PutUint32(out[ikeLengthOff:], uint32(total))
	binary.BigEndian.PutUint16(out[len(aad)-genericHdrLen+payloadLenOff:], uint16(skLen))
	return out, nil
}
