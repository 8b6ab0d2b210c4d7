package measurements

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Response metadata echoed with a table.
type meta struct {
	DeviceID string
	Start    time.Time
	Stop     time.Time
	Every    string // "raw" or a duration like 1h
	Fn       Fn     // "" for raw
}

// appendTime renders t as RFC 3339 in UTC (nanoseconds only when present).
func appendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, time.RFC3339Nano) }

// appendNumber renders v like encoding/json does; NaN (no value) is rendered as null in JSON, empty in CSV.
func appendNumber(b []byte, v float64, null string) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, null...)
	}
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, v, format, -1, 64)
}

// appendJSONString quotes s as a JSON string (values here are validated ids and allow-listed names).
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// renderJSON writes the column-oriented, plot-ready JSON:
// {"deviceId","start","stop","every","fn","fields":[...],"time":[...],"values":{"F":[...],...}}.
func renderJSON(m meta, t *Table) []byte {
	b := make([]byte, 0, sizeHint(t))
	b = append(b, `{"deviceId":`...)
	b = appendJSONString(b, m.DeviceID)
	b = append(b, `,"start":"`...)
	b = appendTime(b, m.Start)
	b = append(b, `","stop":"`...)
	b = appendTime(b, m.Stop)
	b = append(b, `","every":`...)
	b = appendJSONString(b, m.Every)
	if m.Fn != "" {
		b = append(b, `,"fn":`...)
		b = appendJSONString(b, string(m.Fn))
	}
	b = append(b, `,"fields":[`...)
	for i, f := range t.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, string(f))
	}
	b = append(b, `],"time":[`...)
	for i, ts := range t.Times {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = appendTime(b, ts)
		b = append(b, '"')
	}
	b = append(b, `],"values":{`...)
	for i, f := range t.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, string(f))
		b = append(b, ":["...)
		for j, v := range t.Values[i] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendNumber(b, v, "null")
		}
		b = append(b, ']')
	}
	return append(b, "}}\n"...)
}

// renderCSV writes the same table as CSV: a header `time,<fields...>`, then one row per time; no value is empty.
func renderCSV(t *Table) []byte {
	b := make([]byte, 0, sizeHint(t))
	b = append(b, "time"...)
	for _, f := range t.Fields {
		b = append(b, ',')
		b = append(b, f...)
	}
	b = append(b, "\r\n"...)
	for i, ts := range t.Times {
		b = appendTime(b, ts)
		for f := range t.Fields {
			b = append(b, ',')
			b = appendNumber(b, t.Values[f][i], "")
		}
		b = append(b, "\r\n"...)
	}
	return b
}

// sizeHint estimates the rendered size so the buffer is allocated once: a time (~24 bytes) and ~12 per value.
func sizeHint(t *Table) int { return 256 + len(t.Times)*(26+12*len(t.Fields)) }
