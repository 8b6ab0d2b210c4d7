package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// lines is n seed lines of dev-a, one second apart from t0.
func lines(n int, t0 time.Time) []byte {
	var b strings.Builder
	for i := range n {
		b.WriteString(seedLine(devA, t0.Add(time.Duration(i)*time.Second)))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// TestPointsPerRequest: a request of MaxPoints points is written, one more point refuses all of it (413 naming the
// limit), as a plain or a gzip body.
func TestPointsPerRequest(t *testing.T) {
	t0 := at()
	tests := []struct {
		name       string
		n          int
		gzip       bool
		wantStatus int
		wantMsg    string
	}{
		{"at the limit", 10, false, http.StatusNoContent, ""},
		{"one over", 11, false, http.StatusRequestEntityTooLarge, "more than 10 points"},
		{"one over, gzip", 11, true, http.StatusRequestEntityTooLarge, "more than 10 points"},
		// 3,000 seed lines are more bytes than 10 of the longest lines: the byte cap refuses before parsing
		{"far over, gzip", 3000, true, http.StatusRequestEntityTooLarge, "decompressed request body is larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{MaxPoints: 10, Rate: -1, PointRate: -1})
			status, _, body := f.post(req{body: lines(tc.n, t0), gzip: tc.gzip})
			if status != tc.wantStatus {
				t.Fatalf("status %d %v, want %d", status, body, tc.wantStatus)
			}
			want := 0
			if status == http.StatusNoContent {
				want = tc.n * 7
			} else if body["code"] != "request too large" || !strings.Contains(str(body["message"]), tc.wantMsg) {
				t.Errorf("answer %v, want request too large with %q", body, tc.wantMsg)
			}
			if got := len(f.points()); got != want {
				t.Errorf("%d points stored, want %d", got, want)
			}
		})
	}
}

// TestDecodedBodyFollowsPoints: the decompressed cap is MaxPoints times the schema's longest line, so a body that
// could not hold MaxPoints valid points' worth of bytes is refused before it is parsed.
func TestDecodedBodyFollowsPoints(t *testing.T) {
	f := newFixture(t, Options{MaxPoints: 100, Rate: -1, PointRate: -1})
	cap := f.g.o.MaxDecodedBody
	r, err := compile(schema.Default())
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(100 * r.maxLine); cap != want {
		t.Fatalf("MaxDecodedBody = %d, want 100 × %d", cap, r.maxLine)
	}
	if seed := int64(len(seedLine(devA, at())) + 1); seed*100 > cap {
		t.Fatalf("100 seed lines (%d bytes) do not fit the cap %d", seed*100, cap)
	}
	// comments parse as nothing: only the byte cap can refuse these
	filler := []byte("#" + strings.Repeat("x", int(cap)) + "\n" + seedLine(devA, at()))
	for _, gzip := range []bool{false, true} {
		status, _, body := f.post(req{body: filler, gzip: gzip})
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(str(body["message"]), fmt.Sprint(cap)) {
			t.Errorf("gzip %v: %d %v, want 413 naming %d bytes", gzip, status, body, cap)
		}
	}
	if got := len(f.points()); got != 0 {
		t.Errorf("%d points stored, want 0", got)
	}
	if d := newFixture(t, Options{Rate: -1}); d.g.o.MaxDecodedBody >= MaxDecodedBody || d.g.o.MaxPoints != DefaultMaxPoints {
		t.Errorf("defaults: MaxDecodedBody %d MaxPoints %d, want under %d and %d", d.g.o.MaxDecodedBody, d.g.o.MaxPoints, MaxDecodedBody, DefaultMaxPoints)
	}
}

// TestPointRateLimit: the per-device limit counts points as well as requests; a refused request writes nothing and
// takes no points, and another device keeps its own bucket.
func TestPointRateLimit(t *testing.T) {
	c := &clock{t: time.Now()}
	f := newFixture(t, Options{Rate: -1, MaxPoints: 15, PointRate: 10, PointBurst: 20, Now: c.now})
	f.creds.set("cred-b", "dev-b")
	t0 := at()
	if status, _, b := f.post(req{body: lines(15, t0)}); status != 204 {
		t.Fatalf("15 points within the burst: %d %v", status, b)
	}
	status, h, b := f.post(req{body: lines(15, t0.Add(time.Minute))})
	if status != 429 || b["code"] != "too many requests" || !strings.Contains(str(b["message"]), "10 points per second") || h.Get("Retry-After") != "1" {
		t.Errorf("15 more points with 5 left: %d Retry-After %q %v, want 429 naming the point rate, Retry-After 1", status, h.Get("Retry-After"), b)
	}
	if status, _, b := f.post(req{body: []byte("environment Temperature=1 " + fmt.Sprint(t0.Add(2*time.Minute).UnixNano())), auth: "Token cred-b"}); status != 204 {
		t.Errorf("another device: %d %v, want 204", status, b)
	}
	if got := len(f.points()); got != 15*7+1 {
		t.Errorf("%d points stored, want %d (nothing of the refused request)", got, 15*7+1)
	}
	c.t = c.t.Add(time.Second) // 5 + 10 tokens
	if status, _, b := f.post(req{body: lines(15, t0.Add(time.Minute))}); status != 204 {
		t.Errorf("a second later: %d %v, want 204", status, b)
	}
}
