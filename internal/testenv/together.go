// Package testenv holds test-only helpers built on internal/devstack: a DynamoDB or SSM stand-in per test, the
// shared state table, and running work concurrently.
package testenv

import (
	"sync"
	"sync/atomic"
	"time"
)

// Together runs f(0) … f(n-1) in n goroutines released at the same moment (a race's contenders), waits for all of
// them and returns the time from the release to the last one's end.
func Together(n int, f func(i int)) time.Duration {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return time.Since(began)
}

// Pool runs f(0) … f(n-1) on `workers` goroutines, each taking the next i when it is free (a load generator's
// concurrency), and returns the time all of them took and the first error any returned.
func Pool(n, workers int, f func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	began := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(began), first
}
