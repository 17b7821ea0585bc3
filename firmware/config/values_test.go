package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "30": 30 * time.Second, "30s": 30 * time.Second, "10m": 10 * time.Minute,
		"4h": 4 * time.Hour, "1d": 24 * time.Hour, "365d": 365 * 24 * time.Hour,
	} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 90 * time.Second: "90s", time.Hour: "1h", 36 * time.Hour: "36h", 48 * time.Hour: "2d", 2 * time.Minute: "2m"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %s, want %s", d, got, want)
		}
	}
	for _, in := range []string{"", "s", "-1s", "1.5h", "1w", "10 s", "366d", "99999999999999999999s", "1h30m"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "1500": 1500, "1k": 1024, "2M": 2 << 20, "1g": 1 << 30, "16777215G": 16777215 << 30} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "k", "1t", "1.5g", "-1", "17179869184G", "99999999999999999999"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestAddressRange(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":          "10.0.0.0/8",
		"10.0.0.1":            "10.0.0.1",
		"10.0.0.0-10.0.0.127": "10.0.0.0/25",
		"10.0.0.1-10.0.0.127": "10.0.0.1-10.0.0.127",
		"::/0":                "::/0",
	} {
		r, err := parseAddressRange(in)
		if err != nil || r.String() != want {
			t.Errorf("%q: %v, %v", in, r, err)
		}
	}
	a, _ := parseAddressRange("10.0.0.0/24")
	b, _ := parseAddressRange("10.0.0.255-10.0.1.3")
	c, _ := parseAddressRange("10.0.1.0/30")
	if !a.Overlaps(b) || a.Overlaps(c) || !b.Overlaps(c) {
		t.Error("Overlaps")
	}
}
