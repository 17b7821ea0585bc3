package imx6

import (
	"strconv"
	"time"
)

// buildEpoch is the image's build time in seconds since the Unix epoch,
// set by scripts/firmware.sh with -ldflags -X (SOURCE_DATE_EPOCH, else the
// commit time of the tree). Empty in builds that do not set it.
var buildEpoch string

// parseBuildEpoch reads buildEpoch. It refuses what cannot be a build
// time (not a number, before 2020 or past 2200), so that a bad stamp
// leaves the clock at the epoch rather than somewhere arbitrary.
func parseBuildEpoch(s string) (time.Time, bool) {
	secs, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	t := time.Unix(secs, 0).UTC()
	if t.Year() < 2020 || t.Year() > 2200 {
		return time.Time{}, false
	}
	return t, true
}
