package gateway

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per device: rate tokens (requests or points) per second, bursts up to burst. It lives in one function
// instance's memory (Lambda runs several instances, each with its own buckets), so the fleet-wide limit is the
// per-instance one times the number of warm instances. At most max devices are tracked; when full, the devices
// whose bucket has refilled completely (idle ones) are forgotten, and if none has, all are.
type limiter struct {
	rate  float64 // tokens per second; <= 0 disables the limit
	burst float64
	max   int
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*tokens
}

type tokens struct {
	n    float64
	last time.Time
}

func newLimiter(rate float64, burst, max int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: math.Max(1, float64(burst)), max: max, now: now, m: map[string]*tokens{}}
}

// take takes n tokens for device; when there are fewer it takes none and answers how long until there are.
func (l *limiter) take(device string, n float64) (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.m[device]
	if !ok {
		if len(l.m) >= l.max {
			l.forgetIdle(now)
		}
		t = &tokens{n: l.burst, last: now}
		l.m[device] = t
	}
	t.n = math.Min(l.burst, t.n+now.Sub(t.last).Seconds()*l.rate)
	t.last = now
	if t.n >= n {
		t.n -= n
		return true, 0
	}
	return false, time.Duration((n - t.n) / l.rate * float64(time.Second))
}

func (l *limiter) forgetIdle(now time.Time) {
	for id, t := range l.m {
		if t.n+now.Sub(t.last).Seconds()*l.rate >= l.burst {
			delete(l.m, id)
		}
	}
	if len(l.m) >= l.max {
		clear(l.m)
	}
}
