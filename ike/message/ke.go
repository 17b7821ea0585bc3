package message

import (
	"encoding/binary"
	"errors"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Key Exchange payload, RFC 7296 §3.4:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Diffie-Hellman Group Num    |           RESERVED            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                       Key Exchange Data                       ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	keGroup    = 0
	keData     = 4
	keFixedLen = 4
)

// KE is the Key Exchange payload (RFC 7296 §3.4). Checking that Data has
// the size the group requires is the key exchange's job (INVALID_SYNTAX
// there too), not the codec's.
type KE struct {
	Group proposal.KEID
	Data  []byte
}

func (*KE) PayloadType() PayloadType { return PayloadKE }

func parseKE(body []byte) (*KE, error) {
	if len(body) == keFixedLen {
		return nil, errors.New("no key exchange data")
	}
	return &KE{Group: proposal.KEID(binary.BigEndian.Uint16(body[keGroup:])), Data: body[keData:]}, nil
}

func (k *KE) appendBody(b []byte) ([]byte, error) {
	if len(k.Data) == 0 {
		return nil, errors.New("ike/message: KE payload without data")
	}
	b = binary.BigEndian.AppendUint16(b, uint16(k.Group))
	return append(append(b, 0, 0), k.Data...), nil
}
