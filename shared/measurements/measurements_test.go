package measurements_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMeasurementsExactAggregates(t *testing.T) {
	f := newFixture(t)
	base := "/api/devices/dev1/measurements?start=" + minute(0) + "&stop=" + minute(60) + "&every=10m&fields=Temperature,CO2,Pressure"
	tests := []struct {
		fn         string
		temp, co2  func(k int) float64
		wantFnEcho string
	}{
		// window k holds minutes 10k..10k+9; window 3 spans both sensor series (tag change at minute 35)
		{"mean", func(k int) float64 { return float64(10*k) + 4.75 }, func(k int) float64 { return float64(400+10*k) + 4.5 }, "mean"},
		{"min", func(k int) float64 { return float64(10*k) + 0.25 }, func(k int) float64 { return float64(400 + 10*k) }, "min"},
		{"max", func(k int) float64 { return float64(10*k) + 9.25 }, func(k int) float64 { return float64(409 + 10*k) }, "max"},
		{"last", func(k int) float64 { return float64(10*k) + 9.25 }, func(k int) float64 { return float64(409 + 10*k) }, "last"},
		{"", func(k int) float64 { return float64(10*k) + 4.75 }, func(k int) float64 { return float64(400+10*k) + 4.5 }, "mean"},
	}
	for _, tc := range tests {
		t.Run("fn="+tc.fn, func(t *testing.T) {
			path := base
			if tc.fn != "" {
				path += "&fn=" + tc.fn
			}
			m := f.measurementsOK(t, path)
			if m.Every != "10m" || m.Fn != tc.wantFnEcho || m.DeviceID != "dev1" {
				t.Errorf("every, fn, deviceId = %q, %q, %q; want 10m, %s, dev1", m.Every, m.Fn, m.DeviceID, tc.wantFnEcho)
			}
			wantTimes := []string{minute(0), minute(10), minute(20), minute(30), minute(40), minute(50)}
			if strings.Join(m.Time, " ") != strings.Join(wantTimes, " ") {
				t.Errorf("time = %v, want %v", m.Time, wantTimes)
			}
			wantValues(t, "Temperature", m.Values["Temperature"], series(6, func(k int) *float64 { return fp(tc.temp(k)) }))
			wantValues(t, "CO2", m.Values["CO2"], series(6, func(k int) *float64 { return fp(tc.co2(k)) }))
			// no Pressure was written: the asked column is there, all nulls
			wantValues(t, "Pressure", m.Values["Pressure"], series(6, func(int) *float64 { return nil }))
		})
	}
}

func TestMeasurementsAutoWindow(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		maxPoints string
		wantEvery string
		wantRows  int
	}{
		{"6", "10m", 6},  // 5m would give 12 windows
		{"7", "10m", 6},  // still the smallest nice window that fits
		{"5", "15m", 4},  // 10m no longer fits
		{"1", "1h", 1},   // one aligned hour
		{"", "5s", 60},   // default 1000: 2s gives 1800 windows, 5s gives 720 (data is one point a minute)
		{"60", "1m", 60}, // exactly fits
		{"59", "2m", 30},
	}
	for _, tc := range tests {
		t.Run("maxPoints="+tc.maxPoints, func(t *testing.T) {
			path := "/api/devices/dev1/measurements?start=-1h&fields=Temperature"
			if tc.maxPoints != "" {
				path += "&maxPoints=" + tc.maxPoints
			}
			m := f.measurementsOK(t, path)
			if m.Every != tc.wantEvery || len(m.Time) != tc.wantRows {
				t.Fatalf("every=%s rows=%d, want every=%s rows=%d", m.Every, len(m.Time), tc.wantEvery, tc.wantRows)
			}
			if m.Start != minute(0) || m.Stop != minute(60) {
				t.Errorf("start, stop = %s, %s; want %s, %s", m.Start, m.Stop, minute(0), minute(60))
			}
		})
	}
}

func TestMeasurementsFieldsAndDefaults(t *testing.T) {
	f := newFixture(t)
	m := f.measurementsOK(t, "/api/devices/dev1/measurements?start=-1h&every=1h&fields=TVOC,Lat")
	if strings.Join(m.Fields, ",") != "TVOC,Lat" || len(m.Values) != 2 {
		t.Fatalf("fields = %v, values keys = %d; want [TVOC Lat] and 2", m.Fields, len(m.Values))
	}
	wantValues(t, "TVOC", m.Values["TVOC"], []*float64{fp(59)}) // mean of 2i over 0..59
	wantValues(t, "Lat", m.Values["Lat"], []*float64{fp(50.1)})

	// a key in the URL is refused by both routes (keys travel only in the Authorization header)
	if code, body := f.get(t, "/api/devices/dev1/measurements?start=-1h&every=1h&key=operator-key", ""); code != http.StatusBadRequest {
		t.Errorf("measurements with ?key=: got %d %s, want 400", code, body)
	}
	if code, body := f.get(t, "/api/devices/dev1/summary?range=1h&key=operator-key", ""); code != http.StatusBadRequest {
		t.Errorf("summary with ?key=: got %d %s, want 400", code, body)
	}
	m = f.measurementsOK(t, "/api/devices/dev1/measurements?start=-1h&every=1h")
	if got := strings.Join(m.Fields, ","); got != "Temperature,TVOC,Pressure,Humidity,CO2" {
		t.Errorf("default fields = %s, want the seed's five", got)
	}
	wantValues(t, "Humidity", m.Values["Humidity"], []*float64{fp(30.5)}) // mean of 60-i
}

func TestMeasurementsRaw(t *testing.T) {
	f := newFixture(t)
	m := f.measurementsOK(t, "/api/devices/dev1/measurements?start=-1h&every=raw&fields=Temperature,CO2")
	if m.Every != "raw" || m.Fn != "" || len(m.Time) != 60 {
		t.Fatalf("every=%q fn=%q rows=%d, want raw, no fn, 60", m.Every, m.Fn, len(m.Time))
	}
	for i := 0; i < 60; i++ {
		if m.Time[i] != minute(i) || *m.Values["Temperature"][i] != float64(i)+0.25 || *m.Values["CO2"][i] != float64(400+i) {
			t.Fatalf("row %d = %s %v %v, want %s %v %d", i, m.Time[i], *m.Values["Temperature"][i], *m.Values["CO2"][i],
				minute(i), float64(i)+0.25, 400+i)
		}
	}
}

// TestMeasurementsOnlyAskedDevice: dev2 shares times and fields with dev1 but its values (>= 1000) never appear.
func TestMeasurementsOnlyAskedDevice(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{
		"/api/devices/dev1/measurements?start=-1h&every=raw",
		"/api/devices/dev1/measurements?start=-1h&fn=max&every=1h",
	} {
		m := f.measurementsOK(t, path)
		for fld, vals := range m.Values {
			for i, v := range vals {
				if v != nil && *v >= 1000 && fld != "Pressure" {
					t.Fatalf("%s: %s[%d] = %v: another device's data", path, fld, i, *v)
				}
			}
		}
	}
	m := f.measurementsOK(t, "/api/devices/dev2/measurements?start=-1h&fn=min&every=1h&fields=Temperature,CO2")
	wantValues(t, "dev2 Temperature", m.Values["Temperature"], []*float64{fp(1000)})
	wantValues(t, "dev2 CO2", m.Values["CO2"], []*float64{fp(9000)})
}

func TestMeasurementsCSVAgreesWithJSON(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"start=-1h&every=7m&fn=mean", "start=-1h&every=raw&fields=CO2,Pressure,Lon", "start=2020-01-01T00:00:00Z&stop=2020-01-02T00:00:00Z"} {
		t.Run(q, func(t *testing.T) {
			path := "/api/devices/dev1/measurements?" + q
			m := f.measurementsOK(t, path)
			code, body := f.get(t, path, "text/html;q=0.9, text/csv")
			if code != http.StatusOK {
				t.Fatalf("CSV status = %d %s", code, body)
			}
			recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
			if err != nil {
				t.Fatalf("CSV does not parse: %v", err)
			}
			if want := append([]string{"time"}, m.Fields...); strings.Join(recs[0], ",") != strings.Join(want, ",") {
				t.Fatalf("CSV header = %v, want %v", recs[0], want)
			}
			if len(recs)-1 != len(m.Time) {
				t.Fatalf("CSV rows = %d, JSON rows = %d", len(recs)-1, len(m.Time))
			}
			for i, rec := range recs[1:] {
				if rec[0] != m.Time[i] {
					t.Fatalf("row %d time: CSV %s, JSON %s", i, rec[0], m.Time[i])
				}
				for j, fld := range m.Fields {
					jv := m.Values[fld][i]
					switch {
					case rec[j+1] == "" && jv == nil:
					case rec[j+1] == "" || jv == nil:
						t.Fatalf("row %d %s: CSV %q, JSON %v", i, fld, rec[j+1], jv)
					default:
						cv, err := strconv.ParseFloat(rec[j+1], 64)
						if err != nil || cv != *jv {
							t.Fatalf("row %d %s: CSV %q, JSON %v", i, fld, rec[j+1], *jv)
						}
					}
				}
			}
		})
	}
}

func TestMeasurementsTimeZones(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, start, stop string
		wantRows          int
	}{
		{"UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z", 30},
		{"positive offset", url.QueryEscape("2026-01-01T01:00:00+01:00"), url.QueryEscape("2026-01-01T01:30:00+01:00"), 30},
		{"negative offset", "2025-12-31T19:00:00-05:00", "2025-12-31T19:30:00-05:00", 30},
		// an unescaped '+' arrives as a space
		{"unescaped plus", "2026-01-01T05:30:00+05:30", "2026-01-01T06:00:00+05:30", 30},
		{"fractional seconds", "2026-01-01T00:00:00.5Z", "2026-01-01T00:30:00Z", 29},
		{"relative", "-1h", "-30m", 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := f.measurementsOK(t, "/api/devices/dev1/measurements?every=raw&fields=Temperature&start="+tc.start+"&stop="+tc.stop)
			if len(m.Time) != tc.wantRows {
				t.Fatalf("rows = %d, want %d (%v)", len(m.Time), tc.wantRows, m.Time)
			}
			if !strings.HasSuffix(m.Start, "Z") || !strings.HasSuffix(m.Stop, "Z") || m.Time[0] > minute(1) {
				t.Errorf("start=%s stop=%s first=%s: want UTC echoes and the data from %s", m.Start, m.Stop, m.Time[0], minute(0))
			}
			if m.Stop != minute(30) {
				t.Errorf("stop = %s, want %s", m.Stop, minute(30))
			}
		})
	}
}

func TestMeasurementsEmptyRange(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{
		"start=2025-01-01T00:00:00Z&stop=2025-01-02T00:00:00Z",
		"start=2025-01-01T00:00:00Z&stop=2025-01-02T00:00:00Z&every=raw",
		"start=-1h&fields=Pressure&every=raw",
	} {
		m := f.measurementsOK(t, "/api/devices/dev1/measurements?"+q)
		if m.Time == nil || len(m.Time) != 0 {
			t.Errorf("%s: time = %v, want []", q, m.Time)
		}
		for _, fld := range m.Fields {
			if v, ok := m.Values[fld]; !ok || v == nil || len(v) != 0 {
				t.Errorf("%s: values[%s] = %v, want []", q, fld, v)
			}
		}
	}
}

// TestBadRequestsRunNoQuery: every invalid parameter and injection attempt is a 400 naming the parameter, and
// nothing reaches InfluxDB (not even the registry lookup).
func TestBadRequestsRunNoQuery(t *testing.T) {
	f := newFixture(t)
	m := "/api/devices/dev1/measurements?"
	s := "/api/devices/dev1/summary?"
	tests := []struct {
		name, path, param string
	}{
		{"injection in start", m + "start=" + url.QueryEscape(`") |> drop(columns: ["_value"])`), "start"},
		{"injection in stop", m + "stop=" + url.QueryEscape(`now()`), "stop"},
		{"field expression", m + "fields=" + url.QueryEscape(`r._measurement`), "fields"},
		{"field breaking out", m + "fields=" + url.QueryEscape(`Temperature" or r._measurement != "`), "fields"},
		{"field with newline", m + "fields=" + url.QueryEscape("Temperature\n|> drop(columns: [\"clientId\"])"), "fields"},
		{"fn injection", m + "fn=" + url.QueryEscape(`mean, createEmpty: true) |> drop(`), "fn"},
		{"fn unknown", m + "fn=median", "fn"},
		{"every with newline", m + "every=" + url.QueryEscape("1m\n|> yield()"), "every"},
		{"every quote", m + "every=" + url.QueryEscape(`1m"`), "every"},
		{"every too small", m + "every=500ms", "every"},
		{"every too many rows", m + "start=-40d&every=30s", "every"},
		{"raw too long", m + "start=-35d&every=raw", "every"},
		{"maxPoints zero", m + "maxPoints=0", "maxPoints"},
		{"maxPoints too big", m + "maxPoints=10001", "maxPoints"},
		{"maxPoints quote", m + "maxPoints=" + url.QueryEscape(`10"`), "maxPoints"},
		{"maxPoints too small for range", m + "start=-30d&maxPoints=10", "maxPoints"},
		{"start after stop", m + "start=-1h&stop=-2h", "start"},
		{"range too long", m + "start=-500d", "start"},
		{"start not a time", m + "start=yesterday", "start"},
		{"start year 1960", m + "start=1960-01-01T00:00:00Z", "start"},
		{"fields duplicate", m + "fields=CO2,CO2", "fields"},
		{"fields empty entry", m + "fields=CO2,", "fields"},
		{"fields lower case", m + "fields=co2", "fields"},
		{"repeated param", m + "fn=min&fn=max", "fn"},
		{"unknown param", m + "q=" + url.QueryEscape(`from(bucket: "x")`), "q"},
		{"quote in device id", "/api/devices/dev1%22/measurements", "deviceId"},
		{"flux in device id", "/api/devices/" + url.PathEscape(`dev1") |> drop(`) + "/measurements", "deviceId"},
		{"newline in device id", "/api/devices/dev1%0A/measurements", "deviceId"},
		{"summary range injection", s + "range=" + url.QueryEscape(`30d") |> drop(`), "range"},
		{"summary range too long", s + "range=31d", "range"},
		{"summary range too short", s + "range=30m", "range"},
		{"summary fields", s + "fields=" + url.QueryEscape(`r._measurement`), "fields"},
		{"summary device id", "/api/devices/" + url.PathEscape(`x'y`) + "/summary", "deviceId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.queries.Load()
			code, body := f.get(t, tc.path, "")
			if code != http.StatusBadRequest {
				t.Fatalf("GET %s = %d %s, want 400", tc.path, code, body)
			}
			msg, param := errorBody(t, body)
			if param != tc.param || msg == "" {
				t.Errorf("param = %q (error %q), want %q", param, msg, tc.param)
			}
			if n := f.queries.Load() - before; n != 0 {
				t.Errorf("%d queries reached InfluxDB, want 0", n)
			}
		})
	}
}

func TestUnregisteredDevice404(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/api/devices/ghost/measurements", "/api/devices/ghost/summary"} {
		code, body := f.get(t, path, "")
		if code != http.StatusNotFound {
			t.Errorf("GET %s = %d %s, want 404", path, code, body)
		}
		if msg, _ := errorBody(t, body); msg == "" {
			t.Errorf("GET %s: empty error message", path)
		}
	}
}

func TestTimeout504(t *testing.T) {
	f := newFixture(t)
	f.delay.Store(int64(10 * time.Second))
	// a short cap: the registry lookup passes, the data query is held past it
	f.h = newHandlerTimeout(t, f, 300*time.Millisecond)
	for _, path := range []string{"/api/devices/dev1/measurements", "/api/devices/dev1/summary"} {
		start := time.Now()
		code, body := f.get(t, path, "")
		if code != http.StatusGatewayTimeout {
			t.Fatalf("GET %s = %d %s, want 504", path, code, body)
		}
		if msg, _ := errorBody(t, body); msg != "timed out waiting for InfluxDB" {
			t.Errorf("error = %q", msg)
		}
		// not a speed goal: the answer must not have waited for the held query (10s)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("answered after %s: it waited for InfluxDB instead of the 300ms cap", el)
		}
	}
}

func TestSummary(t *testing.T) {
	f := newFixture(t)
	code, body := f.get(t, "/api/devices/dev1/summary?range=1h", "")
	if code != http.StatusOK {
		t.Fatalf("summary = %d %s", code, body)
	}
	var s struct {
		DeviceID  string `json:"deviceId"`
		Range     string `json:"range"`
		Start     string `json:"start"`
		Stop      string `json:"stop"`
		LastEntry *string
		Fields    map[string]struct {
			Count                int64
			Min, Max, Mean, Last *float64
			LastTime             *string
		}
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if s.DeviceID != "dev1" || s.Range != "1h" || s.Start != minute(0) || s.Stop != minute(60) {
		t.Errorf("head = %+v", s)
	}
	if s.LastEntry == nil || *s.LastEntry != minute(59) {
		t.Errorf("lastEntry = %v, want %s", s.LastEntry, minute(59))
	}
	type agg struct{ count, min, max, mean, last float64 }
	want := map[string]agg{
		"Temperature": {60, 0.25, 59.25, 29.75, 59.25},
		"CO2":         {60, 400, 459, 429.5, 459},
		"TVOC":        {60, 0, 118, 59, 118},
		"Humidity":    {60, 1, 60, 30.5, 1},
		"Lat":         {60, 50.1, 50.1, 50.1, 50.1},
		"Lon":         {60, 14.4, 14.4, 14.4, 14.4},
	}
	if len(s.Fields) != 7 {
		t.Errorf("fields = %d, want all 7", len(s.Fields))
	}
	for name, w := range want {
		g, ok := s.Fields[name]
		if !ok || g.Min == nil || g.Max == nil || g.Mean == nil || g.Last == nil || g.LastTime == nil {
			t.Errorf("%s = %+v, want all aggregates", name, g)
			continue
		}
		if float64(g.Count) != w.count || *g.Min != w.min || *g.Max != w.max || !approx(*g.Mean, w.mean) || *g.Last != w.last || *g.LastTime != minute(59) {
			t.Errorf("%s = count %d min %v max %v mean %v last %v at %s; want %+v at %s", name, g.Count, *g.Min, *g.Max, *g.Mean, *g.Last, *g.LastTime, w, minute(59))
		}
	}
	if p := s.Fields["Pressure"]; p.Count != 0 || p.Min != nil || p.Mean != nil || p.Last != nil || p.LastTime != nil {
		t.Errorf("Pressure = %+v, want count 0 and nulls", p)
	}

	// dev2 has its own numbers; and a range that misses the data still reports the last entry
	f2 := newFixtureAt(t, f, t0.Add(3*time.Hour))
	code, body = f2.get(t, "/api/devices/dev2/summary?range=1h&fields=Temperature", "")
	if code != http.StatusOK {
		t.Fatalf("summary = %d %s", code, body)
	}
	s.Fields = nil
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if tm := s.Fields["Temperature"]; len(s.Fields) != 1 || tm.Count != 0 || s.LastEntry == nil || *s.LastEntry != minute(59) {
		t.Errorf("dev2 summary 2h after its data: fields %+v lastEntry %v; want only Temperature with count 0, lastEntry %s", s.Fields, s.LastEntry, minute(59))
	}
	code, body = f.get(t, "/api/devices/dev2/summary?range=24h&fields=Temperature", "")
	s.Fields = nil
	if err := json.Unmarshal(body, &s); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	if tm := s.Fields["Temperature"]; tm.Count != 60 || *tm.Min != 1000 || *tm.Max != 1059 {
		t.Errorf("dev2 Temperature = %+v, want 60 points 1000..1059", tm)
	}
}
