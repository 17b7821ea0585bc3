package message

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Notify payload, RFC 7296 §3.10:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Protocol ID  |   SPI Size    |      Notify Message Type      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                Security Parameter Index (SPI)                 ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                       Notification Data                       ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	notifyProtocol = 0
	notifySPISize  = 1
	notifyType     = 2
	notifySPI      = 4
)

// NotifyType is the Notify Message Type (RFC 7296 §3.10.1). Values below
// 16384 are errors, the rest status notifications.
type NotifyType uint16

// Error types.
const (
	NotifyUnsupportedCriticalPayload NotifyType = 1
	NotifyInvalidIKESPI              NotifyType = 4
	NotifyInvalidMajorVersion        NotifyType = 5
	NotifyInvalidSyntax              NotifyType = 7
	NotifyInvalidMessageID           NotifyType = 9
	NotifyInvalidSPI                 NotifyType = 11
	NotifyNoProposalChosen           NotifyType = 14
	NotifyInvalidKEPayload           NotifyType = 17
	NotifyAuthenticationFailed       NotifyType = 24
	NotifySinglePairRequired         NotifyType = 34
	NotifyNoAdditionalSAs            NotifyType = 35
	NotifyInternalAddressFailure     NotifyType = 36
	NotifyFailedCPRequired           NotifyType = 37
	NotifyTSUnacceptable             NotifyType = 38
	NotifyInvalidSelectors           NotifyType = 39
	NotifyUnacceptableAddresses      NotifyType = 40 // RFC 4555
	NotifyUnexpectedNATDetected      NotifyType = 41 // RFC 4555
	NotifyUseAssignedHoA             NotifyType = 42 // RFC 5026
	NotifyTemporaryFailure           NotifyType = 43
	NotifyChildSANotFound            NotifyType = 44
	NotifyStateNotFound              NotifyType = 47 // RFC 9370
)

// Status types.
const (
	NotifyInitialContact                  NotifyType = 16384
	NotifySetWindowSize                   NotifyType = 16385
	NotifyAdditionalTSPossible            NotifyType = 16386
	NotifyIPCompSupported                 NotifyType = 16387
	NotifyNATDetectionSourceIP            NotifyType = 16388 // RFC 7296 §2.23 (RFC 3948 peers)
	NotifyNATDetectionDestinationIP       NotifyType = 16389
	NotifyCookie                          NotifyType = 16390
	NotifyUseTransportMode                NotifyType = 16391
	NotifyHTTPCertLookupSupported         NotifyType = 16392
	NotifyRekeySA                         NotifyType = 16393
	NotifyESPTFCPaddingNotSupported       NotifyType = 16394
	NotifyNonFirstFragmentsAlso           NotifyType = 16395
	NotifyMOBIKESupported                 NotifyType = 16396 // RFC 4555
	NotifyAdditionalIP4Address            NotifyType = 16397 // RFC 4555
	NotifyAdditionalIP6Address            NotifyType = 16398 // RFC 4555
	NotifyNoAdditionalAddresses           NotifyType = 16399 // RFC 4555
	NotifyUpdateSAAddresses               NotifyType = 16400 // RFC 4555
	NotifyCookie2                         NotifyType = 16401 // RFC 4555
	NotifyNoNATsAllowed                   NotifyType = 16402 // RFC 4555
	NotifyAuthLifetime                    NotifyType = 16403 // RFC 4478
	NotifyMultipleAuthSupported           NotifyType = 16404 // RFC 4739
	NotifyAnotherAuthFollows              NotifyType = 16405 // RFC 4739
	NotifyRedirectSupported               NotifyType = 16406 // RFC 5685
	NotifyRedirect                        NotifyType = 16407 // RFC 5685
	NotifyRedirectedFrom                  NotifyType = 16408 // RFC 5685
	NotifyEAPOnlyAuthentication           NotifyType = 16417 // RFC 5998
	NotifyChildlessIKEv2Supported         NotifyType = 16418 // RFC 6023
	NotifyIKEv2MessageIDSyncSupported     NotifyType = 16420 // RFC 6311
	NotifyIPsecReplayCounterSyncSupported NotifyType = 16421 // RFC 6311
	NotifyIKEv2MessageIDSync              NotifyType = 16422 // RFC 6311
	NotifyIPsecReplayCounterSync          NotifyType = 16423 // RFC 6311
	NotifyIKEv2FragmentationSupported     NotifyType = 16430 // RFC 7383
	NotifySignatureHashAlgorithms         NotifyType = 16431 // RFC 7427
	NotifyIntermediateExchangeSupported   NotifyType = 16438 // RFC 9242
	NotifyAdditionalKeyExchange           NotifyType = 16441 // RFC 9370
)

// notifyNames holds the IANA names ("IKEv2 Notify Message Types") of every
// type the RFCs above define, plus the status types of RFC 5723, 5739,
// 5840, 5857, 6290, 6467, 6631, 6867, 7791, 8019, 8784, 8983 and 9347 that
// peers announce, so that logs name them.
var notifyNames = map[NotifyType]string{
	1: "UNSUPPORTED_CRITICAL_PAYLOAD", 4: "INVALID_IKE_SPI", 5: "INVALID_MAJOR_VERSION",
	7: "INVALID_SYNTAX", 9: "INVALID_MESSAGE_ID", 11: "INVALID_SPI", 14: "NO_PROPOSAL_CHOSEN",
	17: "INVALID_KE_PAYLOAD", 24: "AUTHENTICATION_FAILED", 34: "SINGLE_PAIR_REQUIRED",
	35: "NO_ADDITIONAL_SAS", 36: "INTERNAL_ADDRESS_FAILURE", 37: "FAILED_CP_REQUIRED",
	38: "TS_UNACCEPTABLE", 39: "INVALID_SELECTORS", 40: "UNACCEPTABLE_ADDRESSES",
	41: "UNEXPECTED_NAT_DETECTED", 42: "USE_ASSIGNED_HoA", 43: "TEMPORARY_FAILURE",
	44: "CHILD_SA_NOT_FOUND", 47: "STATE_NOT_FOUND",

	16384: "INITIAL_CONTACT", 16385: "SET_WINDOW_SIZE", 16386: "ADDITIONAL_TS_POSSIBLE",
	16387: "IPCOMP_SUPPORTED", 16388: "NAT_DETECTION_SOURCE_IP", 16389: "NAT_DETECTION_DESTINATION_IP",
	16390: "COOKIE", 16391: "USE_TRANSPORT_MODE", 16392: "HTTP_CERT_LOOKUP_SUPPORTED",
	16393: "REKEY_SA", 16394: "ESP_TFC_PADDING_NOT_SUPPORTED", 16395: "NON_FIRST_FRAGMENTS_ALSO",
	16396: "MOBIKE_SUPPORTED", 16397: "ADDITIONAL_IP4_ADDRESS", 16398: "ADDITIONAL_IP6_ADDRESS",
	16399: "NO_ADDITIONAL_ADDRESSES", 16400: "UPDATE_SA_ADDRESSES", 16401: "COOKIE2",
	16402: "NO_NATS_ALLOWED", 16403: "AUTH_LIFETIME", 16404: "MULTIPLE_AUTH_SUPPORTED",
	16405: "ANOTHER_AUTH_FOLLOWS", 16406: "REDIRECT_SUPPORTED", 16407: "REDIRECT",
	16408: "REDIRECTED_FROM", 16409: "TICKET_LT_OPAQUE", 16410: "TICKET_REQUEST",
	16411: "TICKET_ACK", 16412: "TICKET_NACK", 16413: "TICKET_OPAQUE", 16414: "LINK_ID",
	16415: "USE_WESP_MODE", 16416: "ROHC_SUPPORTED", 16417: "EAP_ONLY_AUTHENTICATION",
	16418: "CHILDLESS_IKEV2_SUPPORTED", 16419: "QUICK_CRASH_DETECTION",
	16420: "IKEV2_MESSAGE_ID_SYNC_SUPPORTED", 16421: "IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED",
	16422: "IKEV2_MESSAGE_ID_SYNC", 16423: "IPSEC_REPLAY_COUNTER_SYNC",
	16424: "SECURE_PASSWORD_METHODS", 16425: "PSK_PERSIST", 16426: "PSK_CONFIRM",
	16427: "ERX_SUPPORTED", 16430: "IKEV2_FRAGMENTATION_SUPPORTED",
	16431: "SIGNATURE_HASH_ALGORITHMS", 16432: "CLONE_IKE_SA_SUPPORTED", 16433: "CLONE_IKE_SA",
	16434: "PUZZLE", 16435: "USE_PPK", 16436: "PPK_IDENTITY", 16437: "NO_PPK_AUTH",
	16438: "INTERMEDIATE_EXCHANGE_SUPPORTED", 16439: "IP4_ALLOWED", 16440: "IP6_ALLOWED",
	16441: "ADDITIONAL_KEY_EXCHANGE", 16442: "USE_AGGFRAG",
}

// String returns the IANA name, or ERROR(n) / STATUS(n) for types without
// one here.
func (t NotifyType) String() string {
	if n, ok := notifyNames[t]; ok {
		return n
	}
	if t.IsError() {
		return fmt.Sprintf("ERROR(%d)", uint16(t))
	}
	return fmt.Sprintf("STATUS(%d)", uint16(t))
}

// IsError reports whether t is an error type (§3.10.1: 0..16383). An
// unrecognized error type in a response means the request failed (§2.21).
func (t NotifyType) IsError() bool { return t < 16384 }

// Notify is the Notify payload (RFC 7296 §3.10).
type Notify struct {
	// Protocol and SPI name the Child SA concerned (ESP or AH with a
	// 4-octet SPI). For the IKE SA the SPI is empty and Protocol is sent
	// as given but ignored on receipt.
	Protocol proposal.Protocol
	SPI      []byte
	Type     NotifyType
	Data     []byte
}

func (*Notify) PayloadType() PayloadType { return PayloadNotify }

// notifySPIValid: an empty SPI goes with any Protocol ID (it is ignored);
// a 4-octet SPI names an AH or ESP SA; an 8-octet one an IKE SA, which RFC
// 7296 no longer sends but RFC 4306 peers may.
func notifySPIValid(p proposal.Protocol, n int) bool {
	switch n {
	case 0:
		return true
	case 4:
		return p == proposal.ProtoAH || p == proposal.ProtoESP
	case 8:
		return p == proposal.ProtoIKE
	}
	return false
}

func parseNotify(body []byte) (*Notify, error) {
	s := cryptobyte.String(body)
	var proto, spiSize uint8
	n := &Notify{}
	var typ uint16
	if !s.ReadUint8(&proto) || !s.ReadUint8(&spiSize) || !s.ReadUint16(&typ) {
		return nil, fmt.Errorf("truncated notify")
	}
	n.Protocol, n.Type = proposal.Protocol(proto), NotifyType(typ)
	if !notifySPIValid(n.Protocol, int(spiSize)) {
		return nil, fmt.Errorf("%v: SPI size %d for protocol %d", n.Type, spiSize, proto)
	}
	if !s.ReadBytes(&n.SPI, int(spiSize)) {
		return nil, fmt.Errorf("%v: SPI of %d octets overruns the payload", n.Type, spiSize)
	}
	n.SPI, n.Data = orNil(n.SPI), orNil(s)
	return n, nil
}

func (n *Notify) appendBody(b []byte) ([]byte, error) {
	if !notifySPIValid(n.Protocol, len(n.SPI)) {
		return nil, fmt.Errorf("ike/message: %v: SPI of %d octets for %v", n.Type, len(n.SPI), n.Protocol)
	}
	b = append(b, byte(n.Protocol), byte(len(n.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(n.Type))
	b = append(b, n.SPI...)
	return append(b, n.Data...), nil
}

// ChildSPI returns the 4-octet SPI of an AH or ESP notification.
func (n *Notify) ChildSPI() (uint32, bool) {
	if len(n.SPI) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(n.SPI), true
}
