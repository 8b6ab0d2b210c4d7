package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// emfLine is the shape CloudWatch requires of an EMF line.
type emfLine struct {
	AWS *struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

// parseLines checks every line is one JSON object with a complete _aws block and returns the lines as maps.
func parseLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var all []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var e emfLine
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
		}
		if e.AWS == nil || e.AWS.Timestamp == nil || len(e.AWS.CloudWatchMetrics) != 1 {
			t.Fatalf("line %d: _aws block missing or incomplete: %s", i, line)
		}
		cw := e.AWS.CloudWatchMetrics[0]
		if cw.Namespace == "" || len(cw.Dimensions) != 1 || len(cw.Metrics) == 0 {
			t.Fatalf("line %d: CloudWatchMetrics incomplete: %s", i, line)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		for _, d := range cw.Dimensions[0] {
			if _, ok := m[d].(string); !ok {
				t.Errorf("line %d: dimension %s has no string value: %s", i, d, line)
			}
		}
		for _, md := range cw.Metrics {
			if md.Unit == "" {
				t.Errorf("line %d: metric %s has no unit", i, md.Name)
			}
			if _, ok := m[md.Name].(float64); !ok {
				t.Errorf("line %d: metric %s has no numeric value: %s", i, md.Name, line)
			}
		}
		all = append(all, m)
	}
	return all
}

func TestEmitWritesEMF(t *testing.T) {
	var buf bytes.Buffer
	ctx := context.Background()
	before := time.Now().UnixMilli()
	Emit(ctx, &buf, "PointsWritten", 1440, Count, Dim{"Function", "backfillworker"})
	Emit(ctx, &buf, "Registrations", 1, Count)
	EmitAll(ctx, &buf, []Dim{{"Status", "503"}}, Metric{"InfluxErrors", 1, Count}, Metric{"ChunkDuration", 12.5, Milliseconds})

	lines := parseLines(t, buf.String())
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	first := lines[0]
	aws := first["_aws"].(map[string]any)
	cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if got := cw["Namespace"]; got != Namespace() {
		t.Errorf("namespace: got %v, want %q", got, Namespace())
	}
	if ts := int64(aws["Timestamp"].(float64)); ts < before || ts > time.Now().UnixMilli() {
		t.Errorf("timestamp %d not within the call", ts)
	}
	if got := first["PointsWritten"]; got != 1440.0 {
		t.Errorf("PointsWritten: got %v, want 1440", got)
	}
	if got := first["Function"]; got != "backfillworker" {
		t.Errorf("Function dimension: got %v", got)
	}
	if got := lines[2]["ChunkDuration"]; got != 12.5 {
		t.Errorf("ChunkDuration: got %v, want 12.5", got)
	}
}

func TestNamespaceFrom(t *testing.T) {
	for env, want := range map[string]string{"": "IoTCenter", "Other": "Other"} {
		if got := namespaceFrom(func(string) string { return env }); got != want {
			t.Errorf("METRICS_NAMESPACE=%q: got %q, want %q", env, got, want)
		}
	}
}

// TestNamespaceReadOnce: the namespace is read once per process; a later change of the environment changes nothing.
func TestNamespaceReadOnce(t *testing.T) {
	first := Namespace()
	t.Setenv("METRICS_NAMESPACE", first+"Changed")
	if got := Namespace(); got != first {
		t.Errorf("after changing METRICS_NAMESPACE: got %q, want %q (read once)", got, first)
	}
}

func TestLineRejects(t *testing.T) {
	now := time.Now()
	nan := 0.0
	tests := []struct {
		name string
		dims []Dim
		ms   []Metric
	}{
		{"no metric", nil, nil},
		{"reserved name", nil, []Metric{{"_aws", 1, Count}}},
		{"bad dimension name", []Dim{{"bad name", "x"}}, []Metric{{"M", 1, Count}}},
		{"metric shadows dimension", []Dim{{"M", "x"}}, []Metric{{"M", 1, Count}}},
		{"duplicate dimension", []Dim{{"D", "x"}, {"D", "y"}}, []Metric{{"M", 1, Count}}},
		{"NaN", nil, []Metric{{"M", nan / nan, Count}}},
		{"json injection", nil, []Metric{{`M","x":"`, 1, Count}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := Line("ns", now, tt.dims, tt.ms...); err == nil {
				t.Errorf("got line %s, want an error", b)
			}
		})
	}
}

func TestEmitDropsBadMetricQuietly(t *testing.T) {
	var buf bytes.Buffer
	Emit(context.Background(), &buf, "bad name", 1, Count)
	if buf.Len() != 0 {
		t.Errorf("got %q, want nothing written", buf.String())
	}
}

func TestConcurrentLinesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Emit(context.Background(), &buf, "PointsWritten", 1, Count, Dim{"Function", "w"})
		}()
	}
	wg.Wait()
	if got := len(parseLines(t, buf.String())); got != 20 {
		t.Errorf("got %d lines, want 20", got)
	}
}

func BenchmarkEmit(b *testing.B) {
	var buf bytes.Buffer
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		Emit(ctx, &buf, "PointsWritten", 1440, Count, Dim{"Function", "backfillworker"})
	}
	b.ReportMetric(float64(buf.Len()), "bytes/line")
}
