package backfill

import (
	"context"
	"sync"

	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// deviceIDs lists the registered device ids, sorted (one registry query): every one when only is nil, else those
// of only (a query that reads just their records).
func deviceIDs(ctx context.Context, reg *registry.Registry, only []string) ([]string, error) {
	var list []registry.Device
	var err error
	if only == nil {
		list, err = reg.List(ctx)
	} else {
		list, err = reg.ListOf(ctx, only)
	}
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, dev := range list {
		ids[i] = dev.ID
	}
	return ids, nil
}

// forEach runs fn(i) for i in [0, n), parallel at a time, stopping at the first error.
func forEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, parallel)
	)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}(i)
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err() // the parent was cancelled (our own cancel runs only on error or after return)
	}
	return first
}
