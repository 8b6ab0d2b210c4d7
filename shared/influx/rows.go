package influx

import (
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrQueryFailed is InfluxDB reporting an error inside a 200 answer: a table whose header holds the columns
// "error" and "reference" (the shape InfluxDB writes). The message that follows it is for the log only.
var ErrQueryFailed = errors.New("influx: query failed mid-stream")

// Header is the header of one table of an annotated-CSV answer, with the annotations that preceded it.
type Header struct {
	Columns   []string
	Datatypes []string // from #datatype; empty when absent
	Defaults  []string // from #default; empty when absent
}

// Index returns the position of a column, -1 when absent.
func (h *Header) Index(name string) int {
	for i, c := range h.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Value returns the cell at column i, or the column's default when the cell is empty.
func (h *Header) Value(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	if rec[i] == "" && i < len(h.Defaults) {
		return h.Defaults[i]
	}
	return rec[i]
}

// ReadTables is the one reader of InfluxDB's annotated CSV. It streams the answer: onHeader is called for each
// table's header and returns the function that receives that table's rows (nil: skip them). Records are reused:
// copy what must outlive the call. An error table ends the read with ErrQueryFailed.
func ReadTables(r io.Reader, onHeader func(h *Header) (func(rec []string) error, error)) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var types, defaults []string
	var row func([]string) error
	expectHeader := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("influx: reading query answer: %w", err)
		}
		if len(rec) > 0 && strings.HasPrefix(rec[0], "#") {
			switch rec[0] {
			case "#datatype":
				types = append(types[:0], rec...)
			case "#default":
				defaults = append(defaults[:0], rec...)
			}
			expectHeader = true
			continue
		}
		if len(rec) == 1 && rec[0] == "" {
			continue // the blank line between tables
		}
		if expectHeader {
			expectHeader = false
			h := &Header{Columns: append([]string(nil), rec...), Datatypes: append([]string(nil), types...),
				Defaults: append([]string(nil), defaults...)}
			types, defaults = types[:0], defaults[:0]
			if ei := h.Index("error"); ei >= 0 && h.Index("reference") >= 0 {
				msg := ""
				if next, err := cr.Read(); err == nil {
					msg = h.Value(next, ei)
				}
				return fmt.Errorf("%w: %s", ErrQueryFailed, msg)
			}
			if row, err = onHeader(h); err != nil {
				return err
			}
			continue
		}
		if row != nil {
			if err := row(rec); err != nil {
				return err
			}
		}
	}
}

// EachRow streams the named columns of every table of an annotated-CSV answer. A table lacking one of the
// columns is an error.
func EachRow(r io.Reader, cols []string, fn func(row []string) error) error {
	row := make([]string, len(cols))
	return ReadTables(r, func(h *Header) (func([]string) error, error) {
		idx := make([]int, len(cols))
		for k, c := range cols {
			if idx[k] = h.Index(c); idx[k] < 0 {
				return nil, fmt.Errorf("influx: query answer has no %s column", c)
			}
		}
		return func(rec []string) error {
			for k, i := range idx {
				if i >= len(rec) {
					return errors.New("influx: short row in query answer")
				}
				row[k] = h.Value(rec, i)
			}
			return fn(row)
		}, nil
	})
}

// Typed returns the cell at column i as the Go value of its #datatype (int64, uint64, float64, bool, time.Time,
// time.Duration, []byte or string); nil for an empty cell without a default.
func (h *Header) Typed(rec []string, i int) (any, error) {
	s := h.Value(rec, i)
	if s == "" {
		return nil, nil
	}
	typ := ""
	if i < len(h.Datatypes) {
		typ = h.Datatypes[i]
	}
	var v any
	var err error
	switch typ {
	case "long":
		v, err = strconv.ParseInt(s, 10, 64)
	case "unsignedLong":
		v, err = strconv.ParseUint(s, 10, 64)
	case "double":
		v, err = strconv.ParseFloat(s, 64)
	case "boolean":
		v, err = strconv.ParseBool(s)
	case "dateTime:RFC3339", "dateTime:RFC3339Nano":
		v, err = time.Parse(time.RFC3339Nano, s)
	case "duration":
		v, err = time.ParseDuration(s)
	case "base64Binary":
		v, err = base64.StdEncoding.DecodeString(s)
	default:
		v = s
	}
	if err != nil {
		return nil, fmt.Errorf("influx: bad %s cell in column %s: %w", typ, h.Columns[i], err)
	}
	return v, nil
}
