package ike

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/bitw-dev/bitw/ike/auth"
	"github.com/bitw-dev/bitw/ike/message"
)

// errAuth wraps every reason a peer's authentication is refused.
var errAuth = errors.New("ike: peer authentication failed")

func authPolicy(a AuthConfig) auth.Policy {
	return auth.Policy{AllowSHA1: a.AllowSHA1, AllowNull: a.Method == AuthNull, RSAPKCS1v15: a.RSAPKCS1v15}
}

// localIdentity is the ID we send: the configured one, else our address.
func localIdentity(sa *ikeSA) Identity {
	if id := sa.conn.Local.ID; !id.IsAny() {
		return id
	}
	return AddrIdentity(sa.local.Addr())
}

// buildAuth computes our AUTH payload over octets (RFC 7296 §2.15, RFC
// 7427, RFC 7619). hashes are the peer's SIGNATURE_HASH_ALGORITHMS.
func (m *Manager) buildAuth(sa *ikeSA, octets []byte, hashes []auth.HashAlgorithm) (*message.Auth, error) {
	conn := sa.conn
	pol := authPolicy(conn.Local)
	switch conn.Local.Method {
	case AuthPSK:
		psk, ok := m.deps.Credentials.SharedKey(sa.localID, sa.remoteID)
		if !ok {
			return nil, fmt.Errorf("ike: no pre-shared key for %s - %s", sa.localID, sa.remoteID)
		}
		data, err := auth.SharedKeyData(sa.keys.PRF, psk, octets)
		if err != nil {
			return nil, err
		}
		return &message.Auth{Method: message.AuthSharedKey, Data: data}, nil
	case AuthNull:
		data, err := auth.NullData(sa.keys, sa.initiator, octets, auth.Policy{AllowNull: true})
		if err != nil {
			return nil, err
		}
		return &message.Auth{Method: message.AuthNull, Data: data}, nil
	case AuthPubkey:
		cert := conn.Local.Certs[0]
		key, ok := m.deps.Credentials.Signer(cert.PublicKey)
		if !ok {
			return nil, fmt.Errorf("ike: no private key for certificate %s", cert.Subject)
		}
		if conn.Local.Classic {
			hashes = nil
		}
		method, h, err := auth.ChooseMethod(cert.PublicKey, hashes, pol)
		if err != nil {
			return nil, err
		}
		data, err := auth.Sign(m.rand, key, method, h, octets, pol)
		if err != nil {
			return nil, err
		}
		return &message.Auth{Method: method, Data: data}, nil
	}
	return nil, fmt.Errorf("ike: local auth method %v", conn.Local.Method)
}

// methodFits reports whether an AUTH method is what the configured
// remote authentication expects.
func methodFits(a AuthMethod, got message.AuthMethod) bool {
	switch a {
	case AuthPSK:
		return got == message.AuthSharedKey
	case AuthNull:
		return got == message.AuthNull
	case AuthPubkey:
		switch got {
		case message.AuthRSASignature, message.AuthECDSAP256SHA256, message.AuthECDSAP384SHA384,
			message.AuthECDSAP521SHA512, message.AuthDigitalSignature:
			return true
		}
	}
	return false
}

// verifyAuth checks the peer's AUTH payload over octets, with the peer's
// certificates from msg for pubkey authentication.
func (m *Manager) verifyAuth(sa *ikeSA, msg *message.Message, id message.ID, a *message.Auth, octets []byte) error {
	conn := sa.conn
	pol := authPolicy(conn.Remote)
	if !methodFits(conn.Remote.Method, a.Method) {
		return fmt.Errorf("%w: %v where %v is configured", errAuth, a.Method, conn.Remote.Method)
	}
	switch conn.Remote.Method {
	case AuthPSK:
		psk, ok := m.deps.Credentials.SharedKey(sa.localID, sa.remoteID)
		if !ok {
			return fmt.Errorf("%w: no pre-shared key for %s - %s", errAuth, sa.localID, sa.remoteID)
		}
		if err := auth.VerifySharedKey(sa.keys.PRF, psk, octets, a.Data); err != nil {
			return fmt.Errorf("%w: %v", errAuth, err)
		}
		return nil
	case AuthNull:
		if id.Type != message.IDNull {
			return fmt.Errorf("%w: NULL authentication with a %v identity", errAuth, id.Type)
		}
		if err := auth.VerifyNull(sa.keys, !sa.initiator, octets, a.Data, pol); err != nil {
			return fmt.Errorf("%w: %v", errAuth, err)
		}
		return nil
	case AuthPubkey:
		cert, err := m.peerCertificate(conn, msg, id)
		if err != nil {
			return fmt.Errorf("%w: %v", errAuth, err)
		}
		if err := auth.Verify(cert.PublicKey, a.Method, a.Data, octets, pol); err != nil {
			return fmt.Errorf("%w: %v", errAuth, err)
		}
		return nil
	}
	return fmt.Errorf("%w: remote auth method %v", errAuth, conn.Remote.Method)
}

// peerCertificate finds the certificate that vouches for the peer: a
// chain from its CERT payloads to one of our CAs, or a pinned
// certificate, and checks that id names it.
func (m *Manager) peerCertificate(conn *Connection, msg *message.Message, id message.ID) (*x509.Certificate, error) {
	var certs [][]byte
	for _, c := range message.FindAll[*message.Cert](msg) {
		if c.Encoding == message.CertX509Signature {
			certs = append(certs, c.Data)
		}
	}
	if len(certs) > auth.MaxPeerCertificates {
		return nil, fmt.Errorf("%d certificates", len(certs))
	}
	if len(conn.Remote.CACerts) > 0 && len(certs) > 0 {
		roots := x509.NewCertPool()
		for _, ca := range conn.Remote.CACerts {
			roots.AddCert(ca)
		}
		return auth.VerifyPeerCertificates(certs, roots, m.now, id)
	}
	// Pinned certificates: the peer need not send its own.
	for _, pinned := range conn.Remote.Certs {
		if len(certs) > 0 && !slices.Equal(certs[0], pinned.Raw) {
			continue
		}
		if err := auth.MatchID(pinned, id); err != nil {
			continue
		}
		return pinned, nil
	}
	if len(certs) == 0 {
		return nil, errors.New("the peer sent no certificate")
	}
	return nil, errors.New("no trusted certificate for the peer")
}

// certPayloads are our CERT payloads, when send_cert says to send them.
func certPayloads(conn *Connection, certReq bool) []message.Payload {
	if conn.Local.Method != AuthPubkey || conn.SendCert == SendCertNever ||
		(conn.SendCert == SendCertIfAsked && !certReq) {
		return nil
	}
	var p []message.Payload
	for _, c := range conn.Local.Certs {
		p = append(p, &message.Cert{Encoding: message.CertX509Signature, Data: c.Raw})
	}
	return p
}

// certReqPayload asks for a chain to our CAs.
func certReqPayload(conn *Connection) []message.Payload {
	if !conn.SendCertReq || conn.Remote.Method != AuthPubkey || len(conn.Remote.CACerts) == 0 {
		return nil
	}
	return []message.Payload{&message.CertReq{Encoding: message.CertX509Signature,
		Data: auth.CertReqData(conn.Remote.CACerts)}}
}
