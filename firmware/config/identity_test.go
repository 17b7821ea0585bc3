package config

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		typ  IDType
		data string // hex, or the string itself for string types
	}{
		{"%any", IDAny, ""},
		{"192.0.2.1", IDIPv4, "c0000201"},
		{"2001:db8::1", IDIPv6, "20010db8000000000000000000000001"},
		{"gw-a.example", IDFQDN, "gw-a.example"},
		{"@gw-a", IDFQDN, "gw-a"},
		{"@192.0.2.1", IDFQDN, "192.0.2.1"},
		{"carol@example.org", IDRFC822, "carol@example.org"},
		{"@#0a0b0c", IDKeyID, "0a0b0c"},
		{"fqdn:192.0.2.1", IDFQDN, "192.0.2.1"},
		{"email:carol@example.org", IDRFC822, "carol@example.org"},
		{"userfqdn:carol", IDRFC822, "carol"},
		{"keyid:#0102", IDKeyID, "0102"},
		{"keyid:abc", IDKeyID, "abc"},
		{"ipv4:#c0000201", IDIPv4, "c0000201"},
	} {
		id, err := ParseIdentity(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		want := tc.data
		if b, err := hex.DecodeString(tc.data); err == nil && tc.typ != IDFQDN && tc.typ != IDRFC822 && !(tc.typ == IDKeyID && tc.in == "keyid:abc") {
			want = string(b)
		}
		if id.Type != tc.typ || string(id.Data) != want {
			t.Errorf("%s: got %s %x", tc.in, id.Type, id.Data)
		}
		if id.String() != tc.in {
			t.Errorf("%s: String() = %s", tc.in, id)
		}
	}
}

func TestParseIdentityDN(t *testing.T) {
	want := pkix.Name{Country: []string{"CH"}, Organization: []string{"strongSwan Project"}, CommonName: "moon.strongswan.org"}
	wantDER, err := asn1.Marshal(want.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"C=CH, O=strongSwan Project, CN=moon.strongswan.org",
		"C=CH,O=strongSwan Project,CN=moon.strongswan.org",
		`C=CH, O="strongSwan Project", CN=moon.strongswan.org`,
		"/C=CH/O=strongSwan Project/CN=moon.strongswan.org",
		"2.5.4.6=CH, 2.5.4.10=strongSwan Project, 2.5.4.3=moon.strongswan.org",
	} {
		id, err := ParseIdentity(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if id.Type != IDDN || !id.Equal(Identity{Type: IDDN, Data: wantDER}) {
			t.Errorf("%s: got %x, want %x", s, id.Data, wantDER)
		}
	}
	// Values that are not PrintableString become UTF8String, and still
	// compare equal to the same name encoded otherwise.
	id, err := ParseIdentity("C=CH, O=Zürich AG, E=gw@example.org")
	if err != nil {
		t.Fatal(err)
	}
	var rdn pkix.RDNSequence
	if _, err := asn1.Unmarshal(id.Data, &rdn); err != nil || len(rdn) != 3 {
		t.Fatalf("DER %x: %v", id.Data, err)
	}
	other, _ := asn1.Marshal(pkix.RDNSequence{
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("CH")}}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "Zürich AG"}},
		{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("gw@example.org")}}},
	})
	if !id.Equal(Identity{Type: IDDN, Data: other}) {
		t.Errorf("DN with other string types does not compare equal")
	}
	if id.Equal(Identity{Type: IDDN, Data: wantDER}) {
		t.Errorf("different DNs compare equal")
	}
}

func TestParseIdentityErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "cannot be empty"},
		{"*.example", "wildcards"},
		{"CN=*", "wildcards"},
		{"gw\x01", "control characters"},
		{"gw a", "blanks"},
		{"@", "names nothing"},
		{"@#xyz", "not hex"},
		{"ipv4:192.0.2.1", "the plain address"},
		{"keyid:#zz", "not hex"},
		{"asn1dn:C=CH", "DER in hex"},
		{"C=CH, FOO=bar", `unknown attribute "FOO"`},
		{"C=CH, O=", "empty value"},
		{"C=CH+O=x", "multi-valued"},
		{`C=CH, O="x`, "unbalanced quote"},
		{"C=Zürich", "two letters"},
		{"E=gü@example.org", "must be ASCII"},
	} {
		_, err := ParseIdentity(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzIdentity checks that parsing never panics and that a parsed
// identity equals itself.
func FuzzIdentity(f *testing.F) {
	for _, s := range []string{"gw-a.example", "C=CH, O=x, CN=y", "/CN=a/O=b", "@#00ff", "carol@example.org", "asn1dn:#3000", "192.0.2.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			return
		}
		if !id.Equal(id) {
			t.Fatalf("%q does not equal itself", s)
		}
		_ = id.String()
	})
}
