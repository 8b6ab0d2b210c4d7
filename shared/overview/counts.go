package overview

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// Ranges the counts plot offers, each read in windows of its every (a few hundred points whatever the range: the
// 30 d plot is read as 2 h windows, the downsampled read, not as its 8,640 five-minute points).
var Ranges = map[string]struct{ Span, Every time.Duration }{
	"1d":  {24 * time.Hour, 5 * time.Minute},
	"7d":  {7 * 24 * time.Hour, 30 * time.Minute},
	"30d": {30 * 24 * time.Hour, 2 * time.Hour},
}

// DefaultRange is the range when none is asked for.
const DefaultRange = "1d"

// fieldFilter matches the fields of Fields (fixed text, no caller value).
var fieldFilter = func() string {
	var b strings.Builder
	for i, f := range Fields {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "r._field == %q", f)
	}
	return b.String()
}()

// seriesFlux reads the last value of each field per window (range |> filter |> aggregateWindow(last) is pushed
// down to the storage engine).
var seriesFlux = `from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "` + schema.FleetMeasurement + `" and (` + fieldFilter + `))
  |> aggregateWindow(every: every, fn: last, createEmpty: false)
  |> keep(columns: ["_time", "_field", "_value"])`

// nowFlux reads each field's latest point within the data bucket's retention (a pushed-down last()).
var nowFlux = `from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "` + schema.FleetMeasurement + `" and (` + fieldFilter + `))
  |> last()
  |> keep(columns: ["_time", "_field", "_value"])`

// Now is the latest fleet-health run's counts.
type Now struct {
	Time            time.Time `json:"time"`
	Online          int64     `json:"online"`
	Late            int64     `json:"late"`
	Silent          int64     `json:"silent"`
	Registered      int64     `json:"registered"`
	PointsPerMinute float64   `json:"pointsPerMinute"`
}

// Series is the counts over the range, one array per field, aligned on Time (epoch milliseconds, each window's
// end); a window without a value for a field holds null.
type Series struct {
	Time            []int64    `json:"time"`
	Online          []*float64 `json:"online"`
	Late            []*float64 `json:"late"`
	Silent          []*float64 `json:"silent"`
	Registered      []*float64 `json:"registered"`
	PointsPerMinute []*float64 `json:"pointsPerMinute"`
}

// Counts is GET /api/overview's answer.
type Counts struct {
	Range  string `json:"range"`
	Every  string `json:"every"`
	Now    *Now   `json:"now"` // null: no fleet-health run wrote within the lookback
	Series Series `json:"series"`
}

// lookback bounds the search for the latest counts (the data bucket's default retention).
const lookback = 30 * 24 * time.Hour

func (s *Service) counts(w http.ResponseWriter, r *http.Request) {
	q, err := api.Query(r, "range")
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	name := q.Get("range")
	if name == "" {
		name = DefaultRange
	}
	rg, ok := Ranges[name]
	if !ok {
		api.WriteError(w, r, api.InvalidParam("range", "range must be one of 1d, 7d, 30d"))
		return
	}
	c, err := s.Counts(r.Context(), name, rg.Span, rg.Every)
	if err != nil {
		api.WriteError(w, r, influx.Fail(r.Context(), err, "reading the fleet counts"))
		return
	}
	api.WriteJSON(w, http.StatusOK, c)
}

// Counts reads the latest counts and the series over span in windows of every, both queries at once.
func (s *Service) Counts(ctx context.Context, name string, span, every time.Duration) (Counts, error) {
	now := s.Clock.Now().UTC()
	stop := now.Add(time.Minute)
	type nowResult struct {
		n   *Now
		err error
	}
	ch := make(chan nowResult, 1)
	go func() {
		n, err := s.latest(ctx, influx.Extern{"bucket": s.Bucket, "start": now.Add(-lookback), "stop": stop})
		ch <- nowResult{n, err}
	}()
	series, err := s.series(ctx, influx.Extern{"bucket": s.Bucket, "start": now.Add(-span), "stop": stop, "every": every})
	latest := <-ch
	if err == nil {
		err = latest.err
	}
	if err != nil {
		return Counts{}, err
	}
	return Counts{Range: name, Every: every.String(), Now: latest.n, Series: series}, nil
}

func (s *Service) latest(ctx context.Context, ext influx.Extern) (*Now, error) {
	var n *Now
	err := s.rows(ctx, nowFlux, ext, func(t time.Time, field string, v float64) {
		if n == nil {
			n = &Now{}
		}
		if t.After(n.Time) {
			n.Time = t
		}
		switch field {
		case "online":
			n.Online = int64(v)
		case "late":
			n.Late = int64(v)
		case "silent":
			n.Silent = int64(v)
		case "registered":
			n.Registered = int64(v)
		case "pointsPerMinute":
			n.PointsPerMinute = v
		}
	})
	return n, err
}

// maxWindows bounds the series (every range has far fewer windows; a damaged answer cannot grow it).
const maxWindows = 2000

func (s *Service) series(ctx context.Context, ext influx.Extern) (Series, error) {
	seen := map[int64]bool{}
	out := Series{Time: []int64{}, Online: []*float64{}, Late: []*float64{}, Silent: []*float64{},
		Registered: []*float64{}, PointsPerMinute: []*float64{}}
	cols := map[string]*[]*float64{"online": &out.Online, "late": &out.Late, "silent": &out.Silent,
		"registered": &out.Registered, "pointsPerMinute": &out.PointsPerMinute}
	var times []int64
	vals := map[string]map[int64]float64{}
	err := s.rows(ctx, seriesFlux, ext, func(t time.Time, field string, v float64) {
		ms := t.UnixMilli()
		if !seen[ms] {
			if len(seen) >= maxWindows {
				return
			}
			seen[ms] = true
			times = append(times, ms)
		}
		if vals[field] == nil {
			vals[field] = map[int64]float64{}
		}
		vals[field][ms] = v
	})
	if err != nil {
		return Series{}, err
	}
	slices.Sort(times)
	out.Time = times
	if out.Time == nil {
		out.Time = []int64{}
	}
	for field, col := range cols {
		for _, ms := range times {
			if v, ok := vals[field][ms]; ok {
				v := v
				*col = append(*col, &v)
			} else {
				*col = append(*col, nil)
			}
		}
	}
	return out, nil
}

// rows runs flux and hands each (_time, _field, _value) row to fn; values that are not finite numbers are skipped.
func (s *Service) rows(ctx context.Context, flux string, ext influx.Extern, fn func(t time.Time, field string, v float64)) error {
	rc, err := s.Influx.QueryRaw(ctx, flux, ext)
	if err != nil {
		return err
	}
	defer rc.Close()
	return influx.EachRow(rc, []string{"_time", "_field", "_value"}, func(row []string) error {
		t, err := time.Parse(time.RFC3339Nano, row[0])
		if err != nil {
			return fmt.Errorf("overview: bad time in query answer: %w", err)
		}
		v, err := strconv.ParseFloat(row[2], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		fn(t, row[1], v)
		return nil
	})
}
