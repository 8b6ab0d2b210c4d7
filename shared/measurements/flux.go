package measurements

import (
	"strings"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// sourceFilter and dsFilter select the device's points of the source measurement and of its hourly aggregates;
// {{ORIGIN}} is the request's origin predicate (originFilter).
const (
	sourceFilter = `r._measurement == "` + schema.Measurement + `" and r.` + schema.TagClientID + ` == qDevice{{ORIGIN}}`
	dsFilter     = `r._measurement == "` + schema.DownsampledMeasurement + `" and r.` + schema.TagClientID + ` == qDevice{{ORIGIN}}`
)

// Origin selects points by who wrote them: the device itself, write-missing (tagged schema.TagGenerated), or both.
type Origin string

// The origins a caller may ask for.
const (
	OriginAll       Origin = "all"
	OriginDevice    Origin = "device"
	OriginGenerated Origin = "generated"
)

// originFilter is the allow-list of origin predicates rendered into the filters.
var originFilter = map[Origin]string{
	OriginAll: "", OriginDevice: " and " + schema.RealFilter, OriginGenerated: " and " + schema.GeneratedFilter,
}

// withOrigin renders o's predicate (an allow-list entry; an unknown origin reads nothing) into text.
func withOrigin(text string, o Origin) string {
	f, ok := originFilter[o]
	if o == "" {
		f, ok = "", true
	}
	if !ok {
		f = " and false"
	}
	return strings.ReplaceAll(text, "{{ORIGIN}}", f)
}

// The queries below are fixed text. The only parts rendered per request are the field predicate and the
// aggregate name, both taken from this package's allow-lists (Field constants, fluxFn values), never from the
// caller. Caller values (device id, times, window) arrive as extern options: qBucket, qDevice, qStart, qStop,
// qEvery.

// fnDefs precedes every text using {{FN}}: lastByTime selects the row with the latest _time (a selector, O(n),
// no sort) where last() would take the table's last row whatever its time.
const fnDefs = `lastByTime = (column="_value", tables=<-) => tables |> max(column: "_time")
`

// windowedFlux aggregates each field over epoch-aligned windows. Series are grouped by field first so a device
// whose sensor tags changed still yields one series per field; toFloat lets integer fields (CO2, TVOC) and
// float fields share the pivoted table.
const windowedFlux = `from(bucket: qBucket)
  |> range(start: qStart, stop: qStop)
  |> filter(fn: (r) => ` + sourceFilter + `)
  |> filter(fn: (r) => {{FIELDS}})
  |> keep(columns: ["_start", "_stop", "_time", "_field", "_value"])
  |> group(columns: ["_field"])
  |> aggregateWindow(every: qEvery, fn: {{FN}}, createEmpty: false, timeSrc: "_start")
  |> toFloat()
  |> keep(columns: ["_time", "_field", "_value"])
  |> group()
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
`

// rawFlux returns the points unaggregated, pivoted like the seed's v1.fieldsAsCols but without the tag columns.
const rawFlux = `from(bucket: qBucket)
  |> range(start: qStart, stop: qStop)
  |> filter(fn: (r) => ` + sourceFilter + `)
  |> filter(fn: (r) => {{FIELDS}})
  |> keep(columns: ["_time", "_field", "_value"])
  |> toFloat()
  |> group()
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
`

// summaryFlux computes the gauges per field in one query (the source is read once and shared by the yields), and
// the device's last entry over all its data, whatever the range. A field's table merges its series, so "last" is
// the row with the latest _time, not the table's last row.
const summaryFlux = `data = from(bucket: qBucket)
  |> range(start: qStart, stop: qStop)
  |> filter(fn: (r) => ` + sourceFilter + `)
  |> filter(fn: (r) => {{FIELDS}})
  |> keep(columns: ["_time", "_field", "_value"])
  |> group(columns: ["_field"])
  |> toFloat()

data |> count() |> yield(name: "count")
data |> min() |> yield(name: "min")
data |> max() |> yield(name: "max")
data |> mean() |> yield(name: "mean")
data |> max(column: "_time") |> yield(name: "last")

from(bucket: qBucket)
  |> range(start: 1970-01-01T00:00:00Z, stop: qStop)
  |> filter(fn: (r) => ` + sourceFilter + `)
  |> last()
  |> keep(columns: ["_time"])
  |> yield(name: "lastEntry")
`

// fieldPredicate renders `r._field == "A" or r._field == "B"` from allow-listed constants only.
func fieldPredicate(fields []Field) string {
	var b strings.Builder
	for i, f := range fields {
		c, ok := lookupField(string(f))
		if !ok {
			// unreachable for validated requests; an impossible predicate keeps foreign text out of Flux
			return "false"
		}
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(`r._field == "`)
		b.WriteString(string(c))
		b.WriteString(`"`)
	}
	if b.Len() == 0 {
		return "false"
	}
	return b.String()
}

// fluxFn is the Flux identifier of the request's aggregate, from the allow-list only.
func (q Request) fluxFn() string {
	if fn, ok := fluxFn[q.Fn]; ok {
		return fn
	}
	return "mean" // unreachable for validated requests
}

// agg is the request's aggregate name from the allow-list (the downsampled schema's agg tag value).
func (q Request) agg() Fn {
	if _, ok := fluxFn[q.Fn]; ok {
		return q.Fn
	}
	return "mean" // unreachable for validated requests
}

// measurementsQuery returns the Flux text and extern values for a validated request.
func measurementsQuery(bucket string, q Request) (string, influx.Extern) {
	ext := influx.Extern{"qBucket": bucket, "qDevice": q.DeviceID, "qStart": q.Start, "qStop": q.Stop}
	text := rawFlux
	if !q.Raw() {
		text = fnDefs + strings.Replace(windowedFlux, "{{FN}}", q.fluxFn(), 1)
		ext["qEvery"] = q.Every
	}
	return withOrigin(strings.Replace(text, "{{FIELDS}}", fieldPredicate(q.Fields), 1), q.Origin), ext
}

// summaryQuery returns the Flux text and extern values for a validated summary request.
func summaryQuery(bucket string, q SummaryRequest) (string, influx.Extern) {
	ext := influx.Extern{"qBucket": bucket, "qDevice": q.DeviceID, "qStart": q.Start, "qStop": q.Stop}
	return withOrigin(strings.Replace(summaryFlux, "{{FIELDS}}", fieldPredicate(q.Fields), 1), q.Origin), ext
}
