// Package metrics writes CloudWatch metrics in Embedded Metric Format (EMF): one JSON object per line on stdout,
// which the Lambda log pipeline turns into metrics without any API call (no latency, no IAM permission).
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units this project uses (names as CloudWatch spells them).
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	Seconds      Unit = "Seconds"
	Bytes        Unit = "Bytes"
	None         Unit = "None"
)

// DefaultNamespace is used when METRICS_NAMESPACE is unset.
const DefaultNamespace = "IoTCenter"

// Dim is one metric dimension. Keep values low-cardinality (status codes, function names; never device ids):
// each distinct combination is a separate, billed metric.
type Dim struct {
	Name  string
	Value string
}

// Metric is one named value of an EMF line.
type Metric struct {
	Name  string
	Value float64
	Unit  Unit
}

// Stdout is where Lambda's log pipeline picks EMF lines up.
var Stdout io.Writer = os.Stdout

// maxDims is CloudWatch's limit on dimensions per metric.
const maxDims = 30

// nameRE keeps metric and dimension names to a safe alphabet; they become JSON keys on the top level of the line,
// so they must not shadow the reserved "_aws" member.
var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,254}$`)

// lineMu serialises writes, so lines of concurrent emitters never interleave.
var lineMu sync.Mutex

// Namespace is the CloudWatch namespace of every metric: METRICS_NAMESPACE or DefaultNamespace, read once per
// process (a cold start), like the rest of the configuration.
func Namespace() string { return namespace() }

var namespace = sync.OnceValue(func() string { return namespaceFrom(os.Getenv) })

func namespaceFrom(getenv func(string) string) string {
	if ns := getenv("METRICS_NAMESPACE"); ns != "" {
		return ns
	}
	return DefaultNamespace
}

// Emit writes one metric as an EMF line to w (metrics.Stdout in functions). Metrics are best effort: a bad name or a
// failed write is logged, never returned, so instrumentation cannot fail a request.
func Emit(ctx context.Context, w io.Writer, name string, value float64, unit Unit, dims ...Dim) {
	EmitAll(ctx, w, dims, Metric{Name: name, Value: value, Unit: unit})
}

// EmitAll writes several metrics sharing the same dimensions as one EMF line.
func EmitAll(ctx context.Context, w io.Writer, dims []Dim, ms ...Metric) {
	line, err := Line(Namespace(), time.Now(), dims, ms...)
	if err != nil {
		api.Logger(ctx).WarnContext(ctx, "metric dropped", slog.String("error", err.Error()))
		return
	}
	lineMu.Lock()
	defer lineMu.Unlock()
	if _, err := w.Write(line); err != nil {
		api.Logger(ctx).WarnContext(ctx, "metric not written", slog.String("error", err.Error()))
	}
}

// Line renders one EMF line (with its trailing newline).
func Line(namespace string, at time.Time, dims []Dim, ms ...Metric) ([]byte, error) {
	if len(ms) == 0 {
		return nil, errorf("no metric")
	}
	if len(dims) > maxDims {
		return nil, errorf("%d dimensions, at most %d", len(dims), maxDims)
	}
	root := make(map[string]any, 1+len(dims)+len(ms))
	dimNames := make([]string, 0, len(dims))
	for _, d := range dims {
		if !nameRE.MatchString(d.Name) {
			return nil, errorf("bad dimension name %q", d.Name)
		}
		if _, dup := root[d.Name]; dup {
			return nil, errorf("duplicate dimension %q", d.Name)
		}
		root[d.Name] = d.Value
		dimNames = append(dimNames, d.Name)
	}
	defs := make([]map[string]string, 0, len(ms))
	for _, m := range ms {
		if !nameRE.MatchString(m.Name) {
			return nil, errorf("bad metric name %q", m.Name)
		}
		if _, dup := root[m.Name]; dup {
			return nil, errorf("metric %q repeats a name", m.Name)
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return nil, errorf("metric %q is not a finite number", m.Name)
		}
		unit := m.Unit
		if unit == "" {
			unit = None
		}
		root[m.Name] = m.Value
		defs = append(defs, map[string]string{"Name": m.Name, "Unit": string(unit)})
	}
	root["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  namespace,
			"Dimensions": [][]string{dimNames},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Since returns the milliseconds elapsed since t, for duration metrics.
func Since(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func errorf(format string, args ...any) error {
	return fmt.Errorf("metrics: "+format, args...)
}
