package measurements

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// parseValue reads a numeric cell; empty (null) and non-finite values are NaN, which the writers answer as null.
func parseValue(s string) (float64, error) {
	if s == "" {
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("influx: bad numeric cell: %w", err)
	}
	if math.IsInf(v, 0) {
		return math.NaN(), nil
	}
	return v, nil
}

// Table is a column-oriented result: one time column and one value column per field (NaN = no value).
type Table struct {
	Fields []Field
	Times  []time.Time
	Values [][]float64 // Values[i] belongs to Fields[i]
}

// readTable fills a Table from the pivoted annotated CSV of measurementsQuery.
func readTable(r io.Reader, fields []Field) (*Table, error) {
	t := &Table{Fields: fields, Values: make([][]float64, len(fields))}
	err := influx.ReadTables(r, func(h *influx.Header) (func([]string) error, error) {
		ti := h.Index("_time")
		if ti < 0 {
			return nil, fmt.Errorf("influx: query result without _time column")
		}
		idx := make([]int, len(fields))
		for i, f := range fields {
			idx[i] = h.Index(string(f)) // -1: the field has no data in this range
		}
		return func(rec []string) error {
			ts, err := time.Parse(time.RFC3339Nano, h.Value(rec, ti))
			if err != nil {
				return fmt.Errorf("influx: bad _time cell: %w", err)
			}
			t.Times = append(t.Times, ts.UTC())
			for i, c := range idx {
				v := math.NaN()
				if c >= 0 {
					if v, err = parseValue(h.Value(rec, c)); err != nil {
						return err
					}
				}
				t.Values[i] = append(t.Values[i], v)
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	t.sortByTime()
	return t, nil
}

// sortByTime orders rows by time; pivot output is normally sorted already, so this is usually a single check.
func (t *Table) sortByTime() {
	if sort.SliceIsSorted(t.Times, func(i, j int) bool { return t.Times[i].Before(t.Times[j]) }) {
		return
	}
	perm := make([]int, len(t.Times))
	for i := range perm {
		perm[i] = i
	}
	sort.SliceStable(perm, func(i, j int) bool { return t.Times[perm[i]].Before(t.Times[perm[j]]) })
	times := make([]time.Time, len(perm))
	for i, p := range perm {
		times[i] = t.Times[p]
	}
	t.Times = times
	for f := range t.Values {
		vals := make([]float64, len(perm))
		for i, p := range perm {
			vals[i] = t.Values[f][p]
		}
		t.Values[f] = vals
	}
}

// FieldSummary is the gauge data of one field over the summary range.
type FieldSummary struct {
	Count    int64      `json:"count"`
	Min      *float64   `json:"min"`
	Max      *float64   `json:"max"`
	Mean     *float64   `json:"mean"`
	Last     *float64   `json:"last"`
	LastTime *time.Time `json:"lastTime"`
}

// Summary is the response of the summary route.
type Summary struct {
	DeviceID  string                  `json:"deviceId"`
	Range     string                  `json:"range"`
	Start     time.Time               `json:"start"`
	Stop      time.Time               `json:"stop"`
	LastEntry *time.Time              `json:"lastEntry"`
	Fields    map[Field]*FieldSummary `json:"fields"`
}

// readSummary fills a Summary from the annotated CSV of summaryQuery; every asked field is present (count 0 and
// nulls when it has no data).
func readSummary(r io.Reader, q SummaryRequest) (*Summary, error) {
	s := &Summary{DeviceID: q.DeviceID, Range: formatDuration(q.Range), Start: q.Start, Stop: q.Stop,
		Fields: make(map[Field]*FieldSummary, len(q.Fields))}
	for _, f := range q.Fields {
		s.Fields[f] = &FieldSummary{}
	}
	err := influx.ReadTables(r, func(h *influx.Header) (func([]string) error, error) {
		ri, fi, vi, ti := h.Index("result"), h.Index("_field"), h.Index("_value"), h.Index("_time")
		return func(rec []string) error {
			result := h.Value(rec, ri)
			if result == "lastEntry" {
				ts, err := time.Parse(time.RFC3339Nano, h.Value(rec, ti))
				if err != nil {
					return fmt.Errorf("influx: bad _time cell: %w", err)
				}
				if s.LastEntry == nil || ts.After(*s.LastEntry) {
					ts = ts.UTC()
					s.LastEntry = &ts
				}
				return nil
			}
			fs := s.Fields[Field(h.Value(rec, fi))]
			if fs == nil {
				return nil
			}
			v, err := parseValue(h.Value(rec, vi))
			if err != nil {
				return err
			}
			if math.IsNaN(v) {
				return nil
			}
			switch result {
			case "count":
				fs.Count = int64(v)
			case "min":
				fs.Min = &v
			case "max":
				fs.Max = &v
			case "mean":
				fs.Mean = &v
			case "last":
				fs.Last = &v
				ts, err := time.Parse(time.RFC3339Nano, h.Value(rec, ti))
				if err != nil {
					return fmt.Errorf("influx: bad _time cell: %w", err)
				}
				ts = ts.UTC()
				fs.LastTime = &ts
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
