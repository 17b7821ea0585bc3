package ike

import (
	"crypto"
)

// StaticCredentials holds pre-shared keys and private keys in memory, as
// the configuration file's [secrets] gives them.
type StaticCredentials struct {
	PSKs []PSK
	Keys []crypto.Signer
}

// PSK is a pre-shared key and the identities it belongs to; none means
// every identity (swanctl's ike secrets without ids).
type PSK struct {
	IDs    []Identity
	Secret []byte
}

// SharedKey picks the PSK that names both identities, else one, else
// none, as swanctl ranks its secrets.
func (s StaticCredentials) SharedKey(local, remote Identity) ([]byte, bool) {
	best, score := []byte(nil), -1
	for _, p := range s.PSKs {
		n := 0
		if len(p.IDs) > 0 {
			matchL, matchR := false, false
			for _, id := range p.IDs {
				if identitiesEqual(id, local) {
					matchL = true
				}
				if identitiesEqual(id, remote) {
					matchR = true
				}
			}
			if !matchL && !matchR {
				continue
			}
			if matchL {
				n++
			}
			if matchR {
				n++
			}
		}
		if n > score {
			best, score = p.Secret, n
		}
	}
	return best, best != nil
}

func identitiesEqual(a, b Identity) bool {
	if a.IsAny() || b.IsAny() {
		return false
	}
	return a.Matches(b.wire())
}

// Signer returns the key whose public half is pub.
func (s StaticCredentials) Signer(pub crypto.PublicKey) (crypto.Signer, bool) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for _, k := range s.Keys {
		if e, ok := k.Public().(equaler); ok && e.Equal(pub) {
			return k, true
		}
	}
	return nil, false
}
