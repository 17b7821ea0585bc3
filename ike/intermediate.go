package ike

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
)

// intermediateTask runs one RFC 9370 additional key exchange in an
// IKE_INTERMEDIATE exchange (RFC 9242): our KE payload, the peer's, then
// new keys for the next exchange. Both messages join the IntAuth chain
// that IKE_AUTH signs.
type intermediateTask struct {
	index   int // AddKE slot
	dh      group.Exchange
	reqData []byte
}

func (*intermediateTask) exchange() message.ExchangeType { return message.ExchangeIKEIntermediate }

func (t *intermediateTask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	g := sa.suite.AddKE[t.index]
	dh, err := group.New(g, m.cfg.Policy, m.rand)
	if err != nil {
		return nil, err
	}
	t.dh = dh
	return []message.Payload{&message.KE{Group: g, Data: dh.Public()}}, nil
}

func (t *intermediateTask) sent(m *Manager, sa *ikeSA, msg *message.Message, packets [][]byte) {
	data, err := intAuthOfBuilt(msg)
	if err != nil {
		m.logIKE(sa, slog.LevelError, "IntAuth of our IKE_INTERMEDIATE request", "err", err)
	}
	t.reqData = data
}

func (t *intermediateTask) process(m *Manager, sa *ikeSA, resp *message.Message) error {
	if n := resp.ErrorNotify(); n != nil {
		return &notifyError{n.Type}
	}
	g := sa.suite.AddKE[t.index]
	ke := message.Find[*message.KE](resp)
	if ke == nil || ke.Group != g {
		return fmt.Errorf("ike: IKE_INTERMEDIATE response without a %v KE payload", g)
	}
	shared, err := t.dh.Shared(ke.Data)
	if err != nil {
		return err
	}
	defer clear(shared)
	t.dh = nil
	respData, err := intAuthOfReceived(sa, resp)
	if err != nil || t.reqData == nil {
		return errors.New("ike: cannot compute IntAuth")
	}
	hs := sa.hs
	hs.intAuth.AddInitiator(sa.keys, t.reqData)
	hs.intAuth.AddResponder(sa.keys, respData)
	next, err := sa.keys.AddKeyExchange(shared)
	if err != nil {
		return err
	}
	hs.nextAddKE++
	m.logIKE(sa, slog.LevelInfo, "additional key exchange done", "ke", g)
	return m.setKeys(sa, next)
}

func (t *intermediateTask) abort(m *Manager, sa *ikeSA, err error) {
	m.initiationFailed(sa, err)
}

// respondIntermediate is the responder's side of one additional key
// exchange. The new keys take over once the answer is sent.
func (m *Manager) respondIntermediate(sa *ikeSA, msg *message.Message) ([]message.Payload, bool) {
	hs := sa.hs
	if sa.initiator || sa.state != IKEConnecting || hs == nil {
		return nil, false
	}
	slot := -1
	for i, n := 0, 0; i < len(sa.suite.AddKE); i++ {
		if sa.suite.AddKE[i] != 0 {
			if n == hs.nextAddKE {
				slot = i
				break
			}
			n++
		}
	}
	if slot < 0 {
		// No key exchange left: an empty IKE_INTERMEDIATE is allowed
		// (RFC 9242) but we have nothing to carry in it.
		return nil, false
	}
	g := sa.suite.AddKE[slot]
	ke := message.Find[*message.KE](msg)
	if ke == nil || ke.Group != g {
		sa.deleteAfterResponse = true
		return []message.Payload{&message.Notify{Type: message.NotifyInvalidSyntax}}, true
	}
	ker, shared, err := group.Respond(g, m.cfg.Policy, m.rand, ke.Data)
	if err != nil {
		sa.deleteAfterResponse = true
		return []message.Payload{&message.Notify{Type: message.NotifyInvalidSyntax}}, true
	}
	defer clear(shared)
	p := []message.Payload{&message.KE{Group: g, Data: ker}}
	reqData, err := intAuthOfReceived(sa, msg)
	if err != nil {
		return nil, false
	}
	resp := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: message.ExchangeIKEIntermediate,
		Flags: message.FlagResponse, MessageID: msg.MessageID}, Payloads: p}
	respData, err := intAuthOfBuilt(resp)
	if err != nil {
		return nil, false
	}
	hs.intAuth.AddInitiator(sa.keys, reqData)
	hs.intAuth.AddResponder(sa.keys, respData)
	next, err := sa.keys.AddKeyExchange(shared)
	if err != nil {
		return nil, false
	}
	hs.nextKeys = next
	hs.nextAddKE++
	return p, true
}

// intAuthOfBuilt is IntAuthData of a message we build: its header as an
// Encrypted message and its payloads in clear (RFC 9242 §3.3.2; for a
// fragmented message, as if it were not).
func intAuthOfBuilt(msg *message.Message) ([]byte, error) {
	plain, err := msg.EncodePlain(nil)
	if err != nil {
		return nil, err
	}
	return keymat.IntAuthData(skAAD(plain), plain[message.HeaderLen:])
}

// skAAD rewrites a plain message's header into the header and Encrypted
// payload header it has when protected; IntAuthData fixes the lengths.
func skAAD(plain []byte) []byte {
	aad := make([]byte, message.HeaderLen+4)
	copy(aad, plain[:message.HeaderLen])
	aad[message.HeaderLen] = plain[16] // first inner payload
	aad[16] = byte(message.PayloadSK)
	return aad
}

// intAuthOfReceived is IntAuthData of a message the peer sent: its real
// header and decrypted content when it came whole, else as reassembled.
func intAuthOfReceived(sa *ikeSA, msg *message.Message) ([]byte, error) {
	raw := msg.Raw()
	if raw == nil {
		return intAuthOfBuilt(msg)
	}
	aadLen := message.HeaderLen + 4
	iv := sa.in.IVSize()
	if len(raw) < aadLen+iv+sa.in.ICVSize() {
		return nil, errors.New("ike: short message")
	}
	pt, err := sa.in.Open(nil, raw[aadLen:aadLen+iv], raw[aadLen+iv:], raw[:aadLen])
	if err != nil || len(pt) == 0 {
		return nil, errors.New("ike: cannot reopen message")
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errors.New("ike: bad padding")
	}
	return keymat.IntAuthData(raw[:aadLen], pt[:len(pt)-1-pad])
}
