package presence

import (
	"crypto/rand"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Defaults of a Recorder.
const (
	// DefaultEvery is the shortest time between two flushes of one instance.
	DefaultEvery = 20 * time.Second
	// DefaultMaxPending caps the devices one instance holds between flushes (a long InfluxDB outage).
	DefaultMaxPending = 200_000
)

// Batch is what one accepted write tells of its device: add each checked point with Add.
type Batch struct {
	Newest       time.Time
	Points       int64
	lat, lon     float64
	latAt, lonAt time.Time
	hasLat       bool
	hasLon       bool
}

// Add counts one point at t; lat and lon are its built-in measurement's Lat and Lon (NaN when the point has none).
// The position kept is the newest point's (the later one on a tie).
func (b *Batch) Add(t time.Time, lat, lon float64) {
	b.Points++
	if t.After(b.Newest) {
		b.Newest = t
	}
	if !math.IsNaN(lat) && validLat(lat) && (!b.hasLat || !t.Before(b.latAt)) {
		b.lat, b.latAt, b.hasLat = lat, t, true
	}
	if !math.IsNaN(lon) && validLon(lon) && (!b.hasLon || !t.Before(b.lonAt)) {
		b.lon, b.lonAt, b.hasLon = lon, t, true
	}
}

// entry is the batch as a digest entry, its time clamped to now (a device may write up to minutes ahead).
func (b *Batch) entry(now time.Time) Entry {
	e := Entry{At: b.Newest, Lat: math.NaN(), Lon: math.NaN(), Points: b.Points}
	if e.At.After(now) {
		e.At = now
	}
	if b.hasLat && b.hasLon {
		e.Lat, e.Lon = b.lat, b.lon
	}
	return e
}

// Recorder is one instance's pending digest. It is safe for concurrent use.
type Recorder struct {
	every      time.Duration
	maxPending int
	slot       string
	nonce      int64 // the low digits of this instance's point times: two instances of a slot rarely share a time

	mu        sync.Mutex
	pending   map[string]Entry
	lastFlush time.Time
	flushing  bool
	lastTS    int64
	dropped   int64
}

// NewRecorder is an instance's recorder flushing at most every `every` (DefaultEvery when 0), holding at most
// maxPending devices (DefaultMaxPending when 0). Its slot and nonce come from a random instance id.
func NewRecorder(every time.Duration, maxPending int) *Recorder {
	if every <= 0 {
		every = DefaultEvery
	}
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (it panics instead, since Go 1.24)
	n := binary.BigEndian.Uint64(id[:])
	return &Recorder{every: every, maxPending: maxPending, slot: strconv.Itoa(int(n % Slots)),
		nonce: int64(n/Slots) % 1000, pending: map[string]Entry{}}
}

// Note records an accepted write of device id at now.
func (r *Recorder) Note(id string, b Batch, now time.Time) {
	if b.Points == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(id, b.entry(now))
}

func (r *Recorder) add(id string, e Entry) {
	if have, ok := r.pending[id]; ok {
		have.merge(e)
		r.pending[id] = have
		return
	}
	if len(r.pending) >= r.maxPending {
		r.dropped++ // seen again at its next write after a flush
		return
	}
	r.pending[id] = e
}

// Pending is the number of devices waiting for a flush.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Flush is one flush's line protocol and its Done, which the caller calls with the write's outcome.
type Flush struct {
	Lines   []byte
	Devices int
	Dropped int64 // devices left out since the last flush because the pending set was full
	r       *Recorder
	taken   map[string]Entry
}

// Done puts the entries back after a failed write (bounded by maxPending), for a later flush to retry.
func (f *Flush) Done(err error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.r.flushing = false
	if err == nil {
		return
	}
	for id, e := range f.taken {
		f.r.add(id, e)
	}
}

// Take returns the pending entries as line protocol when a flush is due at now (the last one at least every ago,
// none in flight and something pending), and nil otherwise. The caller writes Lines, then calls Done.
func (r *Recorder) Take(now time.Time) *Flush {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flushing || len(r.pending) == 0 || (!r.lastFlush.IsZero() && now.Sub(r.lastFlush) < r.every) {
		return nil
	}
	taken := r.pending
	r.pending, r.lastFlush, r.flushing = map[string]Entry{}, now, true
	f := &Flush{Devices: len(taken), Dropped: r.dropped, r: r, taken: taken}
	r.dropped = 0
	for _, v := range Encode(slices.Sorted(maps.Keys(taken)), taken, MaxFieldBytes) {
		// a distinct time per point: the instance's nonce in the low digits, strictly increasing
		ts := now.UnixNano()/1000*1000 + r.nonce
		if ts <= r.lastTS {
			ts = r.lastTS + 1
		}
		r.lastTS = ts
		f.Lines = appendLine(f.Lines, r.slot, v, ts)
	}
	return f
}

// appendLine is one digest point; the value holds no '"' or '\\' (Encode's alphabet), so it needs no escaping.
func appendLine(b []byte, slot, value string, ts int64) []byte {
	b = append(b, Measurement+","+TagSlot+"="...)
	b = append(b, slot...)
	b = append(b, " "+Field+"=\""...)
	b = append(b, value...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '\n')
}
