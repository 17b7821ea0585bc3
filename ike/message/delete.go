package message

import (
	"encoding/binary"
	"fmt"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Delete payload, RFC 7296 §3.11:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Protocol ID   |   SPI Size    |          Num of SPIs          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~               Security Parameter Index(es) (SPI)              ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	delProtocol = 0
	delSPISize  = 1
	delNumSPIs  = 2
	delSPIs     = 4
)

// Delete is the Delete payload (RFC 7296 §3.11). Deleting the IKE SA
// carries no SPIs (its SPIs are in the header); AH and ESP carry the
// 4-octet inbound SPIs of the sender.
type Delete struct {
	Protocol proposal.Protocol
	SPIs     []uint32
}

func (*Delete) PayloadType() PayloadType { return PayloadDelete }

func parseDelete(body []byte) (*Delete, error) {
	d := &Delete{Protocol: proposal.Protocol(body[delProtocol])}
	size, n := int(body[delSPISize]), int(binary.BigEndian.Uint16(body[delNumSPIs:]))
	spis := body[delSPIs:]
	switch d.Protocol {
	case proposal.ProtoIKE:
		if size != 0 || n != 0 || len(spis) != 0 {
			return nil, fmt.Errorf("IKE SA deletion with SPI size %d, %d SPIs, %d octets", size, n, len(spis))
		}
	case proposal.ProtoAH, proposal.ProtoESP:
		if size != 4 || len(spis) != 4*n {
			return nil, fmt.Errorf("%v deletion with SPI size %d, %d SPIs in %d octets", d.Protocol, size, n, len(spis))
		}
		for i := 0; i < n; i++ {
			d.SPIs = append(d.SPIs, binary.BigEndian.Uint32(spis[4*i:]))
		}
	default:
		return nil, fmt.Errorf("deletion for protocol %d", uint8(d.Protocol))
	}
	return d, nil
}

func (d *Delete) appendBody(b []byte) ([]byte, error) {
	switch d.Protocol {
	case proposal.ProtoIKE:
		if len(d.SPIs) != 0 {
			return nil, fmt.Errorf("ike/message: IKE SA deletion carries no SPIs")
		}
		return append(b, byte(d.Protocol), 0, 0, 0), nil
	case proposal.ProtoAH, proposal.ProtoESP:
		if len(d.SPIs) > (maxPayloadLen-genericLen-delSPIs)/4 {
			return nil, fmt.Errorf("ike/message: %v deletion of %d SPIs", d.Protocol, len(d.SPIs))
		}
		b = append(b, byte(d.Protocol), 4)
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.SPIs)))
		for _, spi := range d.SPIs {
			b = binary.BigEndian.AppendUint32(b, spi)
		}
		return b, nil
	}
	return nil, fmt.Errorf("ike/message: deletion for protocol %v", d.Protocol)
}
