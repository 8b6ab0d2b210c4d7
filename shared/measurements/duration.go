package measurements

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// parseTime accepts RFC 3339 (any offset) or a relative duration before now like -7d or -1h30m; "now" is now.
func parseTime(param, s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if strings.HasPrefix(s, "-") {
		d, ok := parseDuration(s[1:])
		if !ok || d > MaxRange {
			return time.Time{}, api.InvalidParam(param, "%s must be RFC 3339 (like 2024-05-01T10:00:00+02:00) or a relative duration up to -%s like -7d or -90m", param, formatDuration(MaxRange))
		}
		return now.Add(-d), nil
	}
	// An unencoded '+' in a query string arrives as a space; no valid value holds a space, so put it back.
	s2 := strings.Replace(s, " ", "+", 1)
	t, err := time.Parse(time.RFC3339Nano, s2)
	if err != nil || t.Year() < 1970 || t.Year() > 2200 {
		return time.Time{}, api.InvalidParam(param, "%s must be RFC 3339 (like 2024-05-01T10:00:00+02:00) between 1970 and 2200, or a relative duration like -7d", param)
	}
	return t.UTC(), nil
}

var units = map[byte]time.Duration{'w': 7 * 24 * time.Hour, 'd': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}

// parseDuration reads a positive duration made of number+unit parts (w, d, h, m, s), e.g. 30d, 1h30m. A value
// whose parts or sum do not fit a time.Duration (about 292 years) is refused, never wrapped around: -213505d would
// otherwise overflow into a small duration and pass the range checks.
func parseDuration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 18 || i == len(s) {
			return 0, false
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		u, ok := units[s[i]]
		if err != nil || !ok || n > int64(math.MaxInt64/u) {
			return 0, false
		}
		part := time.Duration(n) * u
		if total > math.MaxInt64-part {
			return 0, false
		}
		total += part
		s = s[i+1:]
	}
	return total, total > 0
}

// formatDuration renders d in the largest whole unit: 1d, 6h, 90m, 15s.
func formatDuration(d time.Duration) string {
	for _, u := range []struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return d.String()
}
