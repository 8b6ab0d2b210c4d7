package measurements

import (
	"fmt"
	"testing"
)

// TestStaleSpans: stale hours become ascending spans of whole hours, at most max of them; past max the spans with
// the smallest gap between them are joined (the hours in between are read from the raw data too).
func TestStaleSpans(t *testing.T) {
	h := func(hs ...int64) map[int64]bool {
		m := map[int64]bool{}
		for _, x := range hs {
			m[x*3600] = true
		}
		return m
	}
	tests := []struct {
		name  string
		hours map[int64]bool
		max   int
		want  string // spans as [from,to) in hours
	}{
		{"none", h(), 4, "[]"},
		{"one", h(5), 4, "[[5 6]]"},
		{"contiguous", h(5, 6, 7), 4, "[[5 8]]"},
		{"apart", h(1, 5, 6, 20), 4, "[[1 2] [5 7] [20 21]]"},
		{"joined past max", h(1, 3, 10, 11, 30, 31, 45), 2, "[[1 12] [30 46]]"},
		{"joined to one", h(1, 100), 1, "[[1 101]]"},
	}
	for _, tc := range tests {
		var got [][2]int64
		for _, sp := range staleSpans(tc.hours, tc.max) {
			got = append(got, [2]int64{sp.From.Unix() / 3600, sp.To.Unix() / 3600})
		}
		if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && len(got) == 0) {
			t.Errorf("%s: staleSpans = %s, want %s", tc.name, s, tc.want)
		}
	}
}
