package overview

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/positions"
)

// Page sizes of GET /api/overview/silent.
const (
	DefaultSilentLimit = 50
	MaxSilentLimit     = 500
)

// SilentDevice is one silent device: when it was last seen (null: never within the lookback) and where.
type SilentDevice struct {
	DeviceID string     `json:"deviceId"`
	LastSeen *time.Time `json:"lastSeen"`
	Lat      *float64   `json:"lat"`
	Lon      *float64   `json:"lon"`
}

// SilentPage is GET /api/overview/silent's answer: a page of the silent devices, longest silent first (never seen,
// then by lastSeen, then by id), the number of silent devices, and the cursor of the next page (null: the last).
type SilentPage struct {
	Devices   []SilentDevice `json:"devices"`
	Total     int            `json:"total"`
	Next      *string        `json:"next"`
	UpdatedAt *time.Time     `json:"updatedAt"` // the snapshot's time; null before the first fleet-health run
}

func (s *Service) silent(w http.ResponseWriter, r *http.Request) {
	q, err := api.Query(r, "limit", "after")
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	limit := DefaultSilentLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxSilentLimit {
			api.WriteError(w, r, api.InvalidParam("limit", "limit must be an integer from 1 to %d", MaxSilentLimit))
			return
		}
		limit = n
	}
	var after *cursor
	if v := q.Get("after"); v != "" {
		c, err := parseCursor(v)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		after = &c
	}
	snap, err := s.Read(r.Context())
	if err != nil {
		api.WriteError(w, r, influx.Fail(r.Context(), err, "reading the positions snapshot"))
		return
	}
	api.WriteJSON(w, http.StatusOK, SilentOf(snap, after, limit))
}

// SilentOf pages the silent devices of snap after the cursor.
func SilentOf(snap positions.Snapshot, after *cursor, limit int) SilentPage {
	type entry struct {
		c cursor
		d *positions.Device
	}
	var all []entry
	for i := range snap.Devices {
		d := &snap.Devices[i]
		if d.Status == positions.Silent {
			var secs int64
			if !d.LastSeen.IsZero() {
				secs = d.LastSeen.Unix()
			}
			all = append(all, entry{cursor{secs, d.ID}, d})
		}
	}
	less := func(a, b cursor) int { return cmp.Or(cmp.Compare(a.seen, b.seen), cmp.Compare(a.id, b.id)) }
	slices.SortFunc(all, func(a, b entry) int { return less(a.c, b.c) })
	page := SilentPage{Devices: []SilentDevice{}, Total: len(all)}
	if !snap.UpdatedAt.IsZero() {
		t := snap.UpdatedAt
		page.UpdatedAt = &t
	}
	start := 0
	if after != nil {
		start, _ = slices.BinarySearchFunc(all, *after, func(e entry, c cursor) int { return less(e.c, c) })
		if start < len(all) && less(all[start].c, *after) == 0 {
			start++
		}
	}
	end := min(start+limit, len(all))
	for _, e := range all[start:end] {
		sd := SilentDevice{DeviceID: e.d.ID, Lat: finite(e.d.Lat), Lon: finite(e.d.Lon)}
		if !e.d.LastSeen.IsZero() {
			t := e.d.LastSeen
			sd.LastSeen = &t
		}
		page.Devices = append(page.Devices, sd)
	}
	if end < len(all) && end > start {
		next := all[end-1].c.String()
		page.Next = &next
	}
	return page
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
