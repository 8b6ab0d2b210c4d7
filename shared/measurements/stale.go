package measurements

import (
	"sort"
	"time"
)

// maxRawSpans bounds the raw queries one answer makes for stale hours: past it the nearest spans are joined (their
// hours in between are read from the raw data too, exact either way).
const maxRawSpans = 4

// staleSpans turns a set of hours (Unix seconds) into at most max ascending spans covering them.
func staleSpans(hours map[int64]bool, max int) []timeSpan {
	if len(hours) == 0 {
		return nil
	}
	hs := make([]int64, 0, len(hours))
	for hr := range hours {
		hs = append(hs, hr)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	var spans [][2]int64
	for _, hr := range hs {
		if n := len(spans); n > 0 && spans[n-1][1] == hr {
			spans[n-1][1] = hr + 3600
			continue
		}
		spans = append(spans, [2]int64{hr, hr + 3600})
	}
	for len(spans) > max {
		best := 1
		for i := 2; i < len(spans); i++ {
			if spans[i][0]-spans[i-1][1] < spans[best][0]-spans[best-1][1] {
				best = i
			}
		}
		spans[best-1][1] = spans[best][1]
		spans = append(spans[:best], spans[best+1:]...)
	}
	out := make([]timeSpan, len(spans))
	for i, sp := range spans {
		out[i] = timeSpan{From: time.Unix(sp[0], 0).UTC(), To: time.Unix(sp[1], 0).UTC()}
	}
	return out
}

// timeSpan is a half-open interval of time.
type timeSpan struct{ From, To time.Time }

func inSpans(t time.Time, spans []timeSpan) bool {
	for _, sp := range spans {
		if !t.Before(sp.From) && t.Before(sp.To) {
			return true
		}
	}
	return false
}
