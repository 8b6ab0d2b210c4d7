package measurements

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

var now = time.Date(2026, 3, 10, 12, 34, 56, 0, time.UTC)

func parse(t *testing.T, q string) (Request, error) {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatalf("bad test query %q: %v", q, err)
	}
	return ParseRequest("dev1", v, now)
}

func TestParseRequestDefaults(t *testing.T) {
	r, err := parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Stop.Equal(now) || !r.Start.Equal(now.Add(-24*time.Hour)) || r.Fn != "mean" || r.MaxPoints != 1000 || !r.Auto {
		t.Errorf("defaults = %+v", r)
	}
	if got := strings.Join(fieldNames(r.Fields), ","); got != "Temperature,TVOC,Pressure,Humidity,CO2" {
		t.Errorf("default fields = %s", got)
	}
	// 1d at maxPoints 1000: 1m gives 1441 windows (not aligned), 2m gives 721
	if r.Every != 2*time.Minute {
		t.Errorf("auto every for 1d = %s, want 2m", r.Every)
	}
}

func fieldNames(fs []Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

func TestAutoWindow(t *testing.T) {
	tests := []struct {
		query string
		want  time.Duration
	}{
		{"start=-30d", time.Hour},                                                          // 721 windows; 30m gives 1441
		{"start=-30d&maxPoints=10000", 5 * time.Minute},                                    // 8641; 2m gives 21601
		{"start=-7d", 15 * time.Minute},                                                    // 673; 10m gives 1009
		{"start=-1h", 5 * time.Second},                                                     // 721 (now is not aligned); 2s gives 1801
		{"start=-1h&maxPoints=60", 2 * time.Minute},                                        // 1m gives 61 windows when now is not on a minute
		{"start=2026-03-10T00:00:00Z&stop=2026-03-10T01:00:00Z&maxPoints=60", time.Minute}, // aligned: exactly 60
		{"start=-400d&maxPoints=401", 24 * time.Hour},
		{"start=-90s&maxPoints=1", 5 * time.Minute}, // 12:33:26..12:34:56 crosses a 2m boundary, not a 5m one
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r, err := parse(t, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if r.Every != tc.want {
				t.Errorf("every = %s, want %s", r.Every, tc.want)
			}
			if n := windows(r.Start, r.Stop, r.Every); n > int64(r.MaxPoints) {
				t.Errorf("%d windows > maxPoints %d", n, r.MaxPoints)
			}
		})
	}
}

func TestParseRequestInvalid(t *testing.T) {
	tests := []struct{ query, param string }{
		{"start=-0d", "start"},
		{"start=-1y", "start"},
		{"start=-1.5h", "start"},
		{"start=-99999999d", "start"},
		{"start=-213505d", "start"},             // 213505 days overflow time.Duration into about 14 days
		{"start=-106752d", "start"},             // just past the largest time.Duration
		{"every=30501w", "every"},               // overflows into about 2.7 hours
		{"every=15250w15250w", "every"},         // each part fits, the sum does not
		{"every=9999999999999999999s", "every"}, // does not fit an int64

		{"start=" + url.QueryEscape("2026-03-10 10:00:00"), "start"},
		{"stop=-1h&start=-1h", "start"},
		{"stop=2300-01-01T00:00:00Z", "stop"},
		{"every=0s", "every"},
		{"every=8d", "every"},
		{"every=1h1", "every"},
		{"every=-1h", "every"},
		{"every=AUTO", "every"},
		{"fn=Mean", "fn"},
		{"origin=Device", "origin"},
		{"origin=device&origin=all", "origin"},
		{"maxPoints=1e3", "maxPoints"},
		{"maxPoints=-1", "maxPoints"},
		{"fields=Temperature,,CO2", "fields"},
		{"start=" + strings.Repeat("9", 80), "start"},
		{"Start=-1h", "Start"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			_, err := parse(t, tc.query)
			var ae *api.Error
			if !asAPIError(err, &ae) || ae.Code != api.Invalid || ae.Param != tc.param {
				t.Fatalf("err = %v, want a 400 naming %q", err, tc.param)
			}
		})
	}
}

func TestSummaryRangeOverflow(t *testing.T) {
	for _, r := range []string{"213505d", "-213505d", "30501w", "15250w15250w"} {
		_, err := ParseSummaryRequest("dev1", url.Values{"range": {r}}, time.Now())
		var ae *api.Error
		if !asAPIError(err, &ae) || ae.Code != api.Invalid || ae.Param != "range" {
			t.Errorf("range=%s: err = %v, want a 400 naming range", r, err)
		}
	}
}

func asAPIError(err error, target **api.Error) bool {
	e, ok := err.(*api.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestParseRequestAccepts(t *testing.T) {
	tests := []struct {
		query      string
		start, end time.Time
		every      time.Duration
	}{
		{"start=-1h30m&stop=now&every=90s", now.Add(-90 * time.Minute), now, 90 * time.Second},
		{"start=-2w&every=1d", now.Add(-14 * 24 * time.Hour), now, 24 * time.Hour},
		{"start=2026-03-10T10:00:00%2B02:00&stop=2026-03-10T09:00:00Z&every=raw", time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC), time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), 0},
		{"start=2026-03-10T10:00:00+02:00&stop=2026-03-10T09:00:00Z&every=raw", time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC), time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), 0},
		{"start=-34d&stop=-1d&every=raw", now.Add(-34 * 24 * time.Hour), now.Add(-24 * time.Hour), 0}, // 47520 rows <= 50000
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r, err := parse(t, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Start.Equal(tc.start) || !r.Stop.Equal(tc.end) || r.Every != tc.every {
				t.Errorf("got %s..%s every %s, want %s..%s every %s", r.Start, r.Stop, r.Every, tc.start, tc.end, tc.every)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 24 * time.Hour: "1d", 90 * time.Minute: "90m", 5 * time.Second: "5s", 36 * time.Hour: "36h"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

// TestFluxCarriesNoCallerText: the device id and times travel only as extern values; the text holds only the
// allow-listed names.
func TestFluxCarriesNoCallerText(t *testing.T) {
	r, err := parse(t, "start=-2h&fields=CO2,Lat&fn=max&every=10m")
	if err != nil {
		t.Fatal(err)
	}
	r.DeviceID = "device-xyz.1"
	text, ext := measurementsQuery("bucket-abc", r)
	if strings.Contains(text, "device-xyz") || strings.Contains(text, "bucket-abc") || strings.Contains(text, "2026") {
		t.Errorf("caller values rendered into the Flux text:\n%s", text)
	}
	if !strings.Contains(text, `r._field == "CO2" or r._field == "Lat"`) || !strings.Contains(text, "fn: max,") {
		t.Errorf("fields/fn not rendered from the allow-lists:\n%s", text)
	}
	if ext["qDevice"] != "device-xyz.1" || ext["qBucket"] != "bucket-abc" || ext["qEvery"] != 10*time.Minute {
		t.Errorf("extern = %v", ext)
	}
	if p := fieldPredicate([]Field{`x" or true or "`}); p != "false" {
		t.Errorf("a foreign field renders %q, want false", p)
	}
}

func TestWantsCSV(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                              false,
		"application/json":              false,
		"text/csv":                      true,
		"application/json, text/csv":    false, // equal q: the client's first choice
		"text/csv, application/json":    true,
		"text/csv; charset=utf-8":       true,
		"text/csv;q=0":                  false,
		"text/html;q=0.9, text/csv;q=1": true,
		"*/*":                           false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		if got := wantsCSV(r); got != want {
			t.Errorf("wantsCSV(%q) = %v, want %v", accept, got, want)
		}
	}
	// several values, as the API proxy splits a comma-separated Accept
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{[]string{"application/json", "text/csv;q=0.5"}, false},
		{[]string{"application/json;q=0.5", "text/csv"}, true},
		{[]string{"text/html", "text/csv;q=0"}, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range tc.values {
			r.Header.Add("Accept", v)
		}
		if got := wantsCSV(r); got != tc.want {
			t.Errorf("wantsCSV(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}

// TestQueryContext: the cap applies, and an invocation deadline closer than the cap wins (less the margin).
func TestQueryContext(t *testing.T) {
	h := NewService(nil, nil, "b", 12*time.Second)
	ctx, cancel := h.queryContext(context.Background())
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 12*time.Second || time.Until(dl) < 11*time.Second {
		t.Errorf("no invocation deadline: deadline in %s, want about 12s", time.Until(dl))
	}
	parent, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	ctx, cancel3 := h.queryContext(parent)
	defer cancel3()
	if dl, _ := ctx.Deadline(); time.Until(dl) > 2*time.Second-deadlineMargin+50*time.Millisecond {
		t.Errorf("invocation deadline in 2s: query deadline in %s, want <= %s", time.Until(dl), 2*time.Second-deadlineMargin)
	}
}
