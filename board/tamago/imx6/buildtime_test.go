package imx6

import (
	"testing"
	"time"
)

func TestParseBuildEpoch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1795740000", time.Unix(1795740000, 0).UTC(), true},
		{"", time.Time{}, false},
		{"0", time.Time{}, false},           // 1970: no floor
		{"1500000000", time.Time{}, false},  // 2017: before any bitw build
		{"99999999999", time.Time{}, false}, // year 5138
		{"-5", time.Time{}, false},
		{"17957400OO", time.Time{}, false},
		{" 1795740000", time.Time{}, false},
	} {
		got, ok := parseBuildEpoch(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseBuildEpoch(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
