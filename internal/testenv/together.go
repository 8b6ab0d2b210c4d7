package testenv

import (
	"sync"
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
