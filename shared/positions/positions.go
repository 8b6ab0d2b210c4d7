// Package positions is the fleet's positions snapshot: every registered device's last known position, status and
// last-seen time in a compact columnar form. The fleet-health run writes it to the control-plane table (items pk
// POSITIONS: one META item and gzipped parts), and the overview answers it to the dashboard's map in the same
// layout, so neither side builds per-device JSON. Layout and items: shared/store/README.md.
package positions

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Status codes of the status column.
const (
	Online  byte = 0
	Late    byte = 1
	Silent  byte = 2
	Unknown byte = 3 // not judged yet
)

// StatusCode maps a status name to its code.
func StatusCode(s string) byte {
	switch s {
	case "online":
		return Online
	case "late":
		return Late
	case "silent":
		return Silent
	}
	return Unknown
}

// StatusName maps a code to its name.
func StatusName(c byte) string {
	switch c {
	case Online:
		return "online"
	case Late:
		return "late"
	case Silent:
		return "silent"
	}
	return "unknown"
}

// Device is one device of a snapshot. Lat/Lon are NaN when the device reported no position.
type Device struct {
	ID       string
	Lat, Lon float64
	Status   byte
	LastSeen time.Time // zero: never seen
}

// Snapshot is the fleet's positions at UpdatedAt.
type Snapshot struct {
	UpdatedAt time.Time
	Devices   []Device
}

// magic starts every encoded snapshot (a version: a different layout gets a different magic).
var magic = [4]byte{'P', 'O', 'S', '1'}

const (
	headerBytes = 16
	maxIDBytes  = 64
	// MaxDevices bounds what Decode accepts (a damaged or hostile count cannot make it allocate more).
	MaxDevices = 1 << 20
)

// Encode lays out s as: "POS1", u32 n, u32 updatedAt (epoch seconds), u32 0; then n float32 lat, n float32 lon,
// n uint32 lastSeen (epoch seconds, 0: never), n uint8 status, and n ids each as a u8 length and its bytes; all
// little-endian. The 4-byte columns come first so a browser can view them as typed arrays in place.
func Encode(s Snapshot) ([]byte, error) {
	n := len(s.Devices)
	if n > MaxDevices {
		return nil, fmt.Errorf("positions: %d devices, at most %d", n, MaxDevices)
	}
	size := headerBytes + 13*n
	for _, d := range s.Devices {
		if len(d.ID) == 0 || len(d.ID) > maxIDBytes {
			return nil, fmt.Errorf("positions: device id of %d bytes", len(d.ID))
		}
		size += 1 + len(d.ID)
	}
	b := make([]byte, size)
	copy(b, magic[:])
	le := binary.LittleEndian
	le.PutUint32(b[4:], uint32(n))
	le.PutUint32(b[8:], epoch(s.UpdatedAt))
	lat, lon, seen, st := headerBytes, headerBytes+4*n, headerBytes+8*n, headerBytes+12*n
	p := headerBytes + 13*n
	for i, d := range s.Devices {
		le.PutUint32(b[lat+4*i:], math.Float32bits(float32(d.Lat)))
		le.PutUint32(b[lon+4*i:], math.Float32bits(float32(d.Lon)))
		le.PutUint32(b[seen+4*i:], epoch(d.LastSeen))
		b[st+i] = d.Status
		b[p] = byte(len(d.ID))
		p += 1 + copy(b[p+1:], d.ID)
	}
	return b, nil
}

func epoch(t time.Time) uint32 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	if t.Unix() > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(t.Unix())
}

func fromEpoch(s uint32) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

// ErrFormat says the bytes are not an encoded snapshot.
var ErrFormat = errors.New("positions: not a positions snapshot")

// Decode reads Encode's layout, checking every length against the bytes given.
func Decode(b []byte) (Snapshot, error) {
	if len(b) < headerBytes || !bytes.Equal(b[:4], magic[:]) {
		return Snapshot{}, ErrFormat
	}
	le := binary.LittleEndian
	n := int(le.Uint32(b[4:]))
	if n > MaxDevices || len(b) < headerBytes+14*n {
		return Snapshot{}, ErrFormat
	}
	s := Snapshot{UpdatedAt: fromEpoch(le.Uint32(b[8:])), Devices: make([]Device, n)}
	lat, lon, seen, st := headerBytes, headerBytes+4*n, headerBytes+8*n, headerBytes+12*n
	p := headerBytes + 13*n
	for i := range s.Devices {
		if p >= len(b) {
			return Snapshot{}, ErrFormat
		}
		l := int(b[p])
		if l == 0 || l > maxIDBytes || p+1+l > len(b) {
			return Snapshot{}, ErrFormat
		}
		s.Devices[i] = Device{ID: string(b[p+1 : p+1+l]),
			Lat:      float64(math.Float32frombits(le.Uint32(b[lat+4*i:]))),
			Lon:      float64(math.Float32frombits(le.Uint32(b[lon+4*i:]))),
			LastSeen: fromEpoch(le.Uint32(b[seen+4*i:])), Status: b[st+i]}
		p += 1 + l
	}
	if p != len(b) {
		return Snapshot{}, ErrFormat
	}
	return s, nil
}

// Gzip compresses b (fastest level: the answer is built per request).
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// maxPartBytes bounds one part once decompressed (a part of PartDevices devices is far smaller).
const maxPartBytes = 16 << 20

// Gunzip decompresses one part, refusing more than maxPartBytes.
func Gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("positions: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxPartBytes+1))
	if err != nil {
		return nil, fmt.Errorf("positions: %w", err)
	}
	if len(out) > maxPartBytes {
		return nil, fmt.Errorf("positions: a part larger than %d bytes", maxPartBytes)
	}
	return out, nil
}
