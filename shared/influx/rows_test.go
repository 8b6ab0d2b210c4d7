package influx

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEachRowErrorTable(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr error
	}{
		{"error table", "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,boom,\r\n", nil, ErrQueryFailed},
		{"a column named error is data", ",result,table,error\r\n,_result,0,e1\r\n", []string{"e1"}, nil},
		{"default fills an empty cell", "#default,_result,,\r\n,result,table,error\r\n,,0,\r\n", []string{""}, nil},
		{"error table after data", ",result,table,error\r\n,_result,0,e1\r\n\r\n#datatype,string,string\r\n,error,reference\r\n,boom,\r\n", []string{"e1"}, ErrQueryFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := EachRow(strings.NewReader(tc.body), []string{"error"}, func(row []string) error {
				got = append(got, row[0])
				return nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("rows = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTyped(t *testing.T) {
	h := &Header{
		Columns:   []string{"", "l", "u", "d", "b", "t", "s", "n"},
		Datatypes: []string{"#datatype", "long", "unsignedLong", "double", "boolean", "dateTime:RFC3339", "string", "double"},
	}
	rec := []string{"", "-3", "4", "1.5", "true", "2026-01-01T00:00:00Z", "x", ""}
	want := []any{nil, int64(-3), uint64(4), 1.5, true, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "x", nil}
	for i := 1; i < len(rec); i++ {
		got, err := h.Typed(rec, i)
		if err != nil {
			t.Fatalf("column %s: %v", h.Columns[i], err)
		}
		if gt, ok := got.(time.Time); ok {
			if !gt.Equal(want[i].(time.Time)) {
				t.Errorf("column %s = %v, want %v", h.Columns[i], got, want[i])
			}
			continue
		}
		if got != want[i] {
			t.Errorf("column %s = %#v, want %#v", h.Columns[i], got, want[i])
		}
	}
	if _, err := h.Typed([]string{"", "x"}, 1); err == nil {
		t.Error("a non-numeric long was accepted")
	}
}
