package message

import (
	"testing"
	"time"
)

func BenchmarkDecodeIKESAInit(b *testing.B) {
	raw, err := samples(b)[0].m.Encode(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIKEAuthSK(b *testing.B) {
	m, c := samples(b)[1].m, testGCM()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		out, err := m.Encode(buf[:0], c)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
}

func BenchmarkDecodeIKEAuthSK(b *testing.B) {
	c := testGCM()
	raw, err := samples(b)[1].m.Encode(nil, c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReassemble(b *testing.B) {
	c := testGCM()
	frags, err := bigAuth(b).EncodeFragments(c, FragmentSize(0, false, true))
	if err != nil {
		b.Fatal(err)
	}
	r := NewReassembler(ReassemblyLimits{})
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range frags {
			if _, err := r.Add(f, c, now); err != nil {
				b.Fatal(err)
			}
		}
	}
}
