package backfill

import (
	"reflect"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		gaps  []Range
		chunk int
		want  [][]Range
	}{
		{"no gaps", nil, 1440, nil},
		{"one minute", []Range{{100, 101}}, 1440, [][]Range{{{100, 101}}}},
		{"exactly one chunk", []Range{{0, 1440}}, 1440, [][]Range{{{0, 1440}}}},
		{"range across a chunk border", []Range{{0, 5}, {10, 16}}, 8, [][]Range{{{0, 5}, {10, 13}}, {{13, 16}}}},
		{"many small gaps", []Range{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}}, 2,
			[][]Range{{{0, 1}, {2, 3}}, {{4, 5}, {6, 7}}, {{8, 9}}}},
		{"one range, three chunks", []Range{{0, 7}}, 3, [][]Range{{{0, 3}}, {{3, 6}}, {{6, 7}}}},
		{"30 days missing", []Range{{0, 30 * 1440}}, 1440, nil}, // checked below: 30 chunks of 1,440
		{"bad chunk size is clamped", []Range{{0, 2}}, 0, [][]Range{{{0, 1}}, {{1, 2}}}},
		{"borders on whole hours", []Range{{30, 200}}, 60, [][]Range{{{30, 60}}, {{60, 120}}, {{120, 180}}, {{180, 200}}}},
		{"whole hours packed", []Range{{30, 200}}, 90, [][]Range{{{30, 120}}, {{120, 200}}}},
		{"cut at the hour, not inside it", []Range{{50, 70}, {100, 150}}, 60, [][]Range{{{50, 70}, {100, 120}}, {{120, 150}}}},
		{"small gaps fill a chunk", []Range{{0, 10}, {70, 80}, {130, 140}}, 60, [][]Range{{{0, 10}, {70, 80}, {130, 140}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split("dev", tt.gaps, tt.chunk)
			var total int64
			for _, c := range got {
				if c.DeviceID != "dev" {
					t.Errorf("chunk device %q, want dev", c.DeviceID)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("chunk %v invalid: %v", c, err)
				}
				if c.Minutes() > int64(max(tt.chunk, 1)) {
					t.Errorf("chunk holds %d minutes, want <= %d", c.Minutes(), tt.chunk)
				}
				total += c.Minutes()
			}
			var want int64
			for _, g := range tt.gaps {
				want += g.Minutes()
			}
			if total != want {
				t.Errorf("chunks hold %d minutes, want %d", total, want)
			}
			if tt.name == "30 days missing" {
				if len(got) != 30 {
					t.Errorf("got %d chunks, want 30", len(got))
				}
				return
			}
			var ranges [][]Range
			for _, c := range got {
				ranges = append(ranges, c.Ranges)
			}
			if !reflect.DeepEqual(ranges, tt.want) {
				t.Errorf("Split = %v, want %v", ranges, tt.want)
			}
		})
	}
}

func TestGapsOf(t *testing.T) {
	w := Window{From: time.Unix(600, 0), To: time.Unix(600+6*60, 0)} // minutes 10..15
	tests := []struct {
		name    string
		present []bool
		want    []Range
		missing int64
	}{
		{"all present", []bool{true, true, true, true, true, true}, nil, 0},
		{"none present", []bool{false, false, false, false, false, false}, []Range{{10, 16}}, 6},
		{"edges missing", []bool{false, true, true, false, true, false}, []Range{{10, 11}, {13, 14}, {15, 16}}, 3},
	}
	for _, tt := range tests {
		got, missing := gapsOf(w, tt.present)
		if !reflect.DeepEqual(got, tt.want) || missing != tt.missing {
			t.Errorf("%s: gapsOf = %v, %d; want %v, %d", tt.name, got, missing, tt.want, tt.missing)
		}
	}
}

func TestChunkValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Chunk
		ok   bool
	}{
		{"good", Chunk{DeviceID: "d1", Ranges: []Range{{1, 2}, {5, 9}}}, true},
		{"bad id", Chunk{DeviceID: "a b", Ranges: []Range{{1, 2}}}, false},
		{"flux in id", Chunk{DeviceID: `x") |> drop(`, Ranges: []Range{{1, 2}}}, false},
		{"no ranges", Chunk{DeviceID: "d1"}, false},
		{"empty range", Chunk{DeviceID: "d1", Ranges: []Range{{2, 2}}}, false},
		{"reversed", Chunk{DeviceID: "d1", Ranges: []Range{{3, 2}}}, false},
		{"overlap", Chunk{DeviceID: "d1", Ranges: []Range{{1, 5}, {4, 6}}}, false},
		{"negative", Chunk{DeviceID: "d1", Ranges: []Range{{-5, 2}}}, false},
		{"too far", Chunk{DeviceID: "d1", Ranges: []Range{{1, minuteMax + 1}}}, false},
		{"too big", Chunk{DeviceID: "d1", Ranges: []Range{{0, MaxChunkMinutes + 1}}}, false},
	}
	for _, tt := range tests {
		if err := tt.c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestParseWindow(t *testing.T) {
	def := Window{From: time.Unix(0, 0).UTC(), To: time.Unix(60, 0).UTC()}
	tests := []struct {
		name, from, to string
		ok             bool
	}{
		{"default", "", "", true},
		{"good", "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z", true},
		{"offset zone", "2026-01-01T01:00:00+01:00", "2026-01-02T00:00:00Z", true},
		{"only from", "2026-01-01T00:00:00Z", "", false},
		{"not a time", "yesterday", "2026-01-02T00:00:00Z", false},
		{"seconds", "2026-01-01T00:00:30Z", "2026-01-02T00:00:00Z", false},
		{"reversed", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", false},
		{"empty window", "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z", false},
		{"31 days", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", false},
		{"before 1970", "1960-01-01T00:00:00Z", "1960-01-02T00:00:00Z", false},
		{"huge", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000000000000000000000000000000000Z", false},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.from, tt.to, def)
		if (err == nil) != tt.ok {
			t.Errorf("%s: ParseWindow = %v, %v; want ok=%v", tt.name, w, err, tt.ok)
		}
	}
	if w := LastDays(time.Date(2026, 5, 5, 10, 30, 45, 0, time.UTC), 7); w.Minutes() != 7*1440 ||
		!w.To.Equal(time.Date(2026, 5, 5, 10, 30, 0, 0, time.UTC)) {
		t.Errorf("LastDays = %v, want 10,080 minutes ending 10:30", w)
	}
}
