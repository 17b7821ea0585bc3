package message

// Cipher protects the contents of SK and SKF payloads (RFC 7296 §3.14,
// RFC 5282 for AEAD, RFC 7383 §2.5 for fragments). One Cipher serves one
// direction of one IKE SA; it owns IV generation, as RFC 5282 §3 requires
// unique IVs for counter-based modes.
//
// Both AEAD and encrypt-then-MAC ciphers fit this shape: the integrity
// check covers aad (the IKE header and the SK payload header), the IV and
// the ciphertext, as RFC 7296 §3.14 and RFC 5282 §5.1 specify.
type Cipher interface {
	// IVSize is the octets of IV carried before the ciphertext.
	IVSize() int
	// BlockSize is the alignment the plaintext (inner payloads, padding
	// and the Pad Length octet) must reach; 1 for stream and AEAD modes.
	BlockSize() int
	// ICVSize is the octets of integrity check after the ciphertext.
	ICVSize() int
	// NextIV fills iv (IVSize octets) with a fresh IV.
	NextIV(iv []byte) error
	// Seal appends the encryption of plaintext under iv, then the ICV, to
	// dst and returns the result. The ciphertext is as long as the
	// plaintext (a multiple of BlockSize). Encode passes iv and aad as
	// parts of dst[:len(dst)], the message being built; they never overlap
	// the appended output, which is what crypto/cipher.AEAD.Seal requires.
	Seal(dst, iv, plaintext, aad []byte) []byte
	// Open checks the ICV at the end of ciphertext and appends the
	// plaintext to dst. It returns one opaque error on any failure.
	Open(dst, iv, ciphertext, aad []byte) ([]byte, error)
}
