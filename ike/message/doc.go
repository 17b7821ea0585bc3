// Package message encodes and decodes IKEv2 messages (RFC 7296 §3): the
// fixed header, every payload RFC 7296 defines, the Encrypted payload (SK,
// §3.14, RFC 5282 for AEAD) and the Encrypted Fragment payload (SKF, RFC
// 7383), with a bounded fragment reassembler.
//
// Decoding follows OpenBSD iked: a bounds-only pass over the generic payload
// chain (lengths, chaining, minimum sizes per type, the critical bit) runs
// before any payload body is given meaning. Every refusal is a *ParseError
// that names a Reason the engine counts and, where RFC 7296 calls for one,
// the error notification to answer with.
//
// Protected messages go through a Cipher, implemented by the key material
// package: Encode wraps the payloads in SK; Decode checks the ICV before it
// parses anything inside. The Reassembler does the same per SKF fragment.
//
// Ownership: Decode does not retain its input; a decoded Message's byte
// slices alias one private copy of the datagram (or of the decrypted
// content). Encode appends to a caller buffer.
//
// Transform, protocol and key exchange IDs come from ipsec/proposal; this
// package only carries them on the wire.
package message
