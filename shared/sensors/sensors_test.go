package sensors

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

var home = Generator{Lat: 50.0873254, Lon: 14.4071543}

// minutesFrom returns n whole-minute timestamps (ms) starting at t0.
func minutesFrom(t0 time.Time, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = t0.Add(time.Duration(i) * time.Minute).UnixMilli()
	}
	return out
}

func TestValueRanges(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seed := SeedOf("dev-ranges")
	// 100 days of minutes covers every period (up to 90 days) and every phase of the day.
	ts := minutesFrom(t0, 100*1440)
	type bounds struct{ lo, hi float64 }
	seen := map[string]bounds{}
	note := func(name string, v float64) {
		b, ok := seen[name]
		if !ok {
			b = bounds{v, v}
		}
		b.lo, b.hi = math.Min(b.lo, v), math.Max(b.hi, v)
		seen[name] = b
	}
	for _, tm := range ts {
		r := home.At(seed, tm)
		note("Temperature", r.Temperature)
		note("Humidity", r.Humidity)
		note("Pressure", r.Pressure)
		note("CO2", float64(r.CO2))
		note("TVOC", float64(r.TVOC))
		for name, v := range map[string]float64{"Temperature": r.Temperature, "Humidity": r.Humidity, "Pressure": r.Pressure} {
			// one decimal: trunc(x*10)/10
			if got := math.Round(v*10) / 10; got != v {
				t.Fatalf("%s at %d = %v, want one decimal", name, tm, v)
			}
		}
	}
	tests := []struct {
		name string
		rg   Range
	}{
		{"Temperature", Temperature}, {"Humidity", Humidity}, {"Pressure", Pressure}, {"CO2", CO2}, {"TVOC", TVOC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := seen[tt.name]
			// value = trunc((min + dif/2 ± dif/4 ± dif/4 + r)*10)/10 with r in [0,1): within [min, max+1)
			if b.lo < tt.rg.Min || b.hi >= tt.rg.Max+1 {
				t.Errorf("%s spans [%v, %v], want within [%v, %v)", tt.name, b.lo, b.hi, tt.rg.Min, tt.rg.Max+1)
			}
			// the sines really swing: at least 60% of the range is used over 100 days
			if span := b.hi - b.lo; span < 0.6*(tt.rg.Max-tt.rg.Min) {
				t.Errorf("%s spans only %v of %v", tt.name, span, tt.rg.Max-tt.rg.Min)
			}
		})
	}
}

func TestSeedFormula(t *testing.T) {
	// The seed's generateValue, written out independently, with the same r.
	seed := SeedOf("formula")
	tm := time.Date(2026, 3, 7, 13, 45, 0, 0, time.UTC).UnixMilli()
	gen := func(period, lo, hi float64, r float64) float64 {
		dif := hi - lo
		t := float64(tm)
		pv := (dif / 4) * math.Sin(math.Mod(t/DayMillis, period)/period*2*math.Pi)
		dv := (dif / 4) * math.Sin(math.Mod(t, DayMillis)/DayMillis*2*math.Pi-math.Pi/2)
		return math.Trunc((lo+dif/2+pv+dv+r)*10) / 10
	}
	r := home.At(seed, tm)
	tests := []struct {
		name      string
		got, want float64
	}{
		{"Temperature", r.Temperature, gen(30, 0, 40, seed.R(tm, 0))},
		{"Humidity", r.Humidity, gen(90, 0, 99, seed.R(tm, 1))},
		{"Pressure", r.Pressure, gen(20, 970, 1050, seed.R(tm, 2))},
		{"CO2", float64(r.CO2), math.Trunc(gen(1, 400, 3000, seed.R(tm, 3)))},
		{"TVOC", float64(r.TVOC), math.Trunc(gen(1, 250, 2000, seed.R(tm, 4)))},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDeterminism(t *testing.T) {
	t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	ts := minutesFrom(t0, 2000)
	a, b := NewLine(home, "dev-a"), NewLine(home, "dev-a")
	other := NewLine(home, "dev-b")
	var bufA, bufB, bufO []byte
	for _, tm := range ts {
		bufA = a.Append(bufA, tm)
		bufB = b.Append(bufB, tm)
		bufO = other.Append(bufO, tm)
	}
	if string(bufA) != string(bufB) {
		t.Fatal("the same device and minutes rendered different lines")
	}
	// another device gets other random terms: most Temperature values differ
	same := 0
	sa, so := SeedOf("dev-a"), SeedOf("dev-b")
	for _, tm := range ts {
		if home.At(sa, tm).Temperature == home.At(so, tm).Temperature {
			same++
		}
	}
	if same > len(ts)/2 {
		t.Errorf("%d of %d Temperature values equal across devices, want the random term to differ", same, len(ts))
	}
	// r is uniform-ish on [0,1)
	var sum float64
	for i, tm := range ts {
		r := sa.R(tm, uint64(i%5))
		if r < 0 || r >= 1 {
			t.Fatalf("r = %v, want [0,1)", r)
		}
		sum += r
	}
	if mean := sum / float64(len(ts)); mean < 0.45 || mean > 0.55 {
		t.Errorf("mean r = %v, want about 0.5", mean)
	}
}

func TestGPSTrackContinuousAndClosed(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := minutesFrom(t0, 31*1440)
	maxStep := 0.0
	lat0, lon0 := home.Position(ts[0])
	for i := 1; i < len(ts); i++ {
		la, lo := home.Position(ts[i-1])
		lb, lob := home.Position(ts[i])
		step := math.Hypot(lb-la, lob-lo)
		maxStep = math.Max(maxStep, step)
		if math.Abs(lb-home.Lat) > 0.02 || math.Abs(lob-home.Lon) > 0.05 {
			t.Fatalf("position %v,%v strays from home", lb, lob)
		}
	}
	// one lap is about 2π·0.02° long over 43,200 minutes: a minute moves well under 1e-4 degrees
	if maxStep > 1e-4 {
		t.Errorf("largest one-minute step %v degrees, want a continuous track (< 1e-4)", maxStep)
	}
	lat30, lon30 := home.Position(t0.Add(30 * 24 * time.Hour).UnixMilli())
	if lat30 != lat0 || lon30 != lon0 {
		t.Errorf("after 30 days at %v,%v, want back at %v,%v", lat30, lon30, lat0, lon0)
	}
	latH, lonH := home.Position(t0.Add(15 * 24 * time.Hour).UnixMilli())
	if math.Hypot(latH-lat0, lonH-lon0) < 0.005 {
		t.Errorf("half a lap later still near the start: the track does not move")
	}
}

func TestLineProtocol(t *testing.T) {
	tm := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC).UnixMilli()
	l := NewLine(home, "dev-1")
	got := string(l.Append(nil, tm))
	r := home.At(SeedOf("dev-1"), tm)
	wantPrefix := "environment,CO2Sensor=virtual_CO2Sensor,GPSSensor=virtual_GPSSensor,HumiditySensor=virtual_HumiditySensor," +
		"PressureSensor=virtual_PressureSensor,TVOCSensor=virtual_TVOCSensor,TemperatureSensor=virtual_TemperatureSensor," +
		"clientId=dev-1 CO2="
	if !strings.HasPrefix(got, wantPrefix) {
		t.Fatalf("line = %q, want prefix %q", got, wantPrefix)
	}
	if !strings.HasSuffix(got, " 1767323040000000000\n") {
		t.Errorf("line = %q, want a nanosecond timestamp on the minute", got)
	}
	for _, want := range []string{"i,Humidity=", ",Lat=", ",Lon=", ",Pressure=", "i,Temperature="} {
		if !strings.Contains(got, want) {
			t.Errorf("line = %q, missing %q", got, want)
		}
	}
	if r.CO2 < 400 {
		t.Errorf("CO2 = %d", r.CO2)
	}
	if got := len(TagMap("x")); got != 7 {
		t.Errorf("TagMap has %d tags, want 7", got)
	}
	if got := len(r.Fields()); got != 7 {
		t.Errorf("Fields has %d fields, want 7", got)
	}
}

func BenchmarkLineAppend(b *testing.B) {
	l := NewLine(home, "bench-device")
	buf := make([]byte, 0, 400*5000)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		buf = buf[:0]
		for k := 0; k < 5000; k++ {
			buf = l.Append(buf, t0+int64(k)*60_000)
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(b.N*5000)/el.Seconds(), "lines/s")
	b.ReportMetric(float64(len(buf))/5000, "bytes/line")
}

func TestAppendFixedParsesToTheSameFloat(t *testing.T) {
	tests := []struct {
		units    int64
		decimals int
		want     string
	}{
		{234, 1, "23.4"}, {230, 1, "23.0"}, {5, 1, "0.5"}, {0, 1, "0.0"}, {-3, 1, "-0.3"},
		{500873254, 7, "50.0873254"}, {144071543, 7, "14.4071543"}, {500000001, 7, "50.0000001"}, {-1234567, 7, "-0.1234567"},
	}
	for _, tt := range tests {
		if got := string(appendFixed(nil, tt.units, tt.decimals)); got != tt.want {
			t.Errorf("appendFixed(%d, %d) = %s, want %s", tt.units, tt.decimals, got, tt.want)
		}
	}
	// every value a reading can hold parses back to the reading's float exactly
	seed := SeedOf("fixed")
	for i := int64(0); i < 20000; i++ {
		tm := 1_700_000_000_000 + i*60_000
		f := home.fixedAt(seed, tm)
		r := f.reading()
		for _, c := range []struct {
			units int64
			dec   int
			want  float64
		}{{f.temperature, 1, r.Temperature}, {f.humidity, 1, r.Humidity}, {f.pressure, 1, r.Pressure}, {f.lat, 7, r.Lat}, {f.lon, 7, r.Lon}} {
			got, err := strconv.ParseFloat(string(appendFixed(nil, c.units, c.dec)), 64)
			if err != nil || got != c.want {
				t.Fatalf("%d units (%d decimals) print as a number parsing to %v (%v), want %v", c.units, c.dec, got, err, c.want)
			}
		}
	}
}
