package overview

import (
	"context"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// snapshots keeps the last positions snapshot a function instance read: each call reads only the META item and
// reads the parts again only when the fleet-health run wrote a new snapshot (every 5 minutes at most), so the map
// and the silent pages cost one small read instead of the whole fleet's parts.
type snapshots struct {
	t    *store.Table
	mu   sync.Mutex
	snap positions.Snapshot
	ok   bool
}

func (c *snapshots) read(ctx context.Context) (positions.Snapshot, error) {
	updated, found, err := positions.Updated(ctx, c.t)
	if err != nil || !found {
		return positions.Snapshot{}, err
	}
	c.mu.Lock()
	if c.ok && c.snap.UpdatedAt.Equal(updated) {
		s := c.snap
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	s, err := positions.Read(ctx, c.t)
	if err != nil {
		return positions.Snapshot{}, err
	}
	c.mu.Lock()
	if !c.ok || s.UpdatedAt.After(c.snap.UpdatedAt) || s.UpdatedAt.Equal(updated) {
		c.snap, c.ok = s, true
	}
	c.mu.Unlock()
	return s, nil
}

// answers keeps the encoded positions answer of the last snapshot served (encoding and gzip cost more than the
// read at 100,000 devices).
type answers struct {
	mu       sync.Mutex
	at       time.Time
	n        int
	raw, gz  []byte
	haveData bool
}

// get returns the answer for s, built once per snapshot (identified by its time and size).
func (a *answers) get(s positions.Snapshot, gzip bool) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.haveData || !a.at.Equal(s.UpdatedAt) || a.n != len(s.Devices) || s.UpdatedAt.IsZero() {
		raw, err := positions.Encode(s)
		if err != nil {
			return nil, err
		}
		a.at, a.n, a.raw, a.gz, a.haveData = s.UpdatedAt, len(s.Devices), raw, nil, true
	}
	if !gzip {
		return a.raw, nil
	}
	if a.gz == nil {
		a.gz = positions.Gzip(a.raw)
	}
	return a.gz, nil
}
