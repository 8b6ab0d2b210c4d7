package testenv

import (
	"errors"
	"sync"
	"testing"
)

func TestPoolRunsEachItemOnceOnItsWorkers(t *testing.T) {
	const n, workers = 200, 4
	var mu sync.Mutex
	seen := map[int]int{}
	running, most := 0, 0
	boom := errors.New("item 7")
	_, err := Pool(n, workers, func(i int) error {
		mu.Lock()
		seen[i]++
		running++
		most = max(most, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		if i == 7 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Pool error = %v, want %v", err, boom)
	}
	if len(seen) != n {
		t.Errorf("items run = %d, want %d", len(seen), n)
	}
	for i, c := range seen {
		if c != 1 {
			t.Errorf("item %d ran %d times, want once", i, c)
		}
	}
	if most > workers {
		t.Errorf("at most %d items ran at once, want <= %d", most, workers)
	}
}
