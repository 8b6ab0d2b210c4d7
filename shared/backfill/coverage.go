package backfill

import (
	"context"
	"math"
	"net/http"
	"strconv"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// Coverage is how much of a window holds data.
type Coverage struct {
	DeviceID string `json:"deviceId,omitempty"`
	Window
	Expected int64   `json:"expected"`
	Present  int64   `json:"present"`
	Missing  int64   `json:"missing"`
	Percent  float64 `json:"percent"`
}

func newCoverage(id string, win Window, expected, present int64) Coverage {
	pct := 100.0
	if expected > 0 {
		// floor to two decimals: 99.999% must not read as 100
		pct = math.Floor(float64(present)*10000/float64(expected)) / 100
	}
	return Coverage{DeviceID: id, Window: win, Expected: expected, Present: present,
		Missing: expected - present, Percent: pct}
}

// fleetCountsFlux counts every device's Temperature points in the window: one pushed-down count per series, so
// the answer is a row per series whatever the window holds.
var fleetCountsFlux = schema.PresenceFlux(`!= ""`) + `
  |> count()
  |> keep(columns: ["clientId", "_value"])`

// fleetPresent returns each device's point count in w (summed over its series), from one query.
func (p *Planner) fleetPresent(ctx context.Context, w Window) (map[string]int64, error) {
	rc, err := p.Influx.QueryRaw(ctx, fleetCountsFlux, influx.Extern{"bucket": p.Bucket, "start": w.From, "stop": w.To})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[string]int64{}
	err = influx.EachRow(rc, []string{"clientId", "_value"}, func(row []string) error {
		n, err := strconv.ParseInt(row[1], 10, 64)
		if err != nil {
			return err
		}
		out[row[0]] += n
		return nil
	})
	return out, err
}

func (s *Service) coverageWindow(r *http.Request) (Window, error) {
	q, err := api.Query(r, "from", "to")
	if err != nil {
		return Window{}, err
	}
	return ParseWindow(q.Get("from"), q.Get("to"), LastDays(s.Clock.Now(), DefaultDays))
}

// coverageDevice is GET /api/devices/{deviceId}/write-missing: the device's present minutes, exactly (one query).
func (s *Service) coverageDevice(w http.ResponseWriter, r *http.Request) {
	r, id, err := api.DeviceID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	win, err := s.coverageWindow(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if _, err := s.Devices.Get(ctx, id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	present, err := s.Planner.Present(ctx, id, win)
	if err != nil {
		api.WriteError(w, r, influx.Fail(r.Context(), err, "querying InfluxDB"))
		return
	}
	var n int64
	for _, p := range present {
		if p {
			n++
		}
	}
	api.WriteJSON(w, http.StatusOK, newCoverage(id, win, win.Minutes(), n))
}

// coverageAll is GET /api/write-missing: every registered device's coverage in two queries (the registry's list
// and one grouped count), whatever the fleet size. A device's present minutes are its points in the window, capped
// at the window's minutes (a device writing once a minute, as devices and the backfill do, counts exactly).
func (s *Service) coverageAll(w http.ResponseWriter, r *http.Request) {
	win, err := s.coverageWindow(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	type result struct {
		counts map[string]int64
		err    error
	}
	done := make(chan result, 1)
	go func() {
		c, err := s.Planner.fleetPresent(ctx, win)
		done <- result{c, err}
	}()
	ids, err := deviceIDs(ctx, s.Devices, nil)
	res := <-done
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if res.err != nil {
		api.WriteError(w, r, influx.Fail(r.Context(), res.err, "querying InfluxDB"))
		return
	}
	expected := win.Minutes()
	covs := make([]Coverage, len(ids))
	var present int64
	for i, id := range ids {
		n := min(res.counts[id], expected)
		covs[i] = newCoverage(id, win, expected, n)
		present += n
	}
	total := newCoverage("", win, expected*int64(len(ids)), present)
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"from": total.From, "to": total.To, "expected": total.Expected, "present": total.Present,
		"missing": total.Missing, "percent": total.Percent, "devices": covs,
	})
}
