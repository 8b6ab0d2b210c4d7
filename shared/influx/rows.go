package influx

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// EachRow streams the named columns of an annotated-CSV query answer (every table of it). It is a small
// purpose-built reader: the generic record parser builds a map per row, which costs more than the query for tens
// of thousands of rows. A table lacking one of the columns is an error.
func EachRow(r io.Reader, cols []string, fn func(row []string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	idx := make([]int, len(cols))
	row := make([]string, len(cols))
	header := true // the first row after annotations is a header
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("influx: reading query answer: %w", err)
		}
		if len(rec) > 0 && len(rec[0]) > 0 && rec[0][0] == '#' {
			header = true
			continue
		}
		if len(rec) == 1 && rec[0] == "" {
			continue // the blank line between tables
		}
		if header {
			header = false
			for i := range idx {
				idx[i] = -1
			}
			for i, name := range rec {
				if name == "error" {
					// an error table in the middle of a streamed answer
					return errors.New("influx: query failed while streaming")
				}
				for k, c := range cols {
					if name == c {
						idx[k] = i
					}
				}
			}
			for k, i := range idx {
				if i < 0 {
					return fmt.Errorf("influx: query answer has no %s column", cols[k])
				}
			}
			continue
		}
		for k, i := range idx {
			if i >= len(rec) {
				return errors.New("influx: short row in query answer")
			}
			row[k] = rec[i]
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}
