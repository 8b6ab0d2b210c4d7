package backfill

import (
	"context"
	"sync"

	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// Devices is what the feature needs from the device registry.
type Devices interface {
	// Exists returns nil for a registered device and an *api.Error NotFound otherwise.
	Exists(ctx context.Context, id string) error
	// IDs lists the registered devices, sorted (one registry query): every one when only is nil, else those of
	// only (a query that reads just their records).
	IDs(ctx context.Context, only []string) ([]string, error)
}

// Registry is the part of the device registry (registry.Registry) RegistryDevices reads.
type Registry interface {
	Get(ctx context.Context, id string) (registry.Device, error)
	List(ctx context.Context) ([]registry.Device, error)
	ListOf(ctx context.Context, ids []string) ([]registry.Device, error)
}

var (
	_ Registry = (*registry.Registry)(nil)
	_ Devices  = RegistryDevices{}
)

// RegistryDevices answers Devices from the device registry.
type RegistryDevices struct{ R Registry }

// Exists returns nil for a registered device, the registry's NotFound otherwise.
func (d RegistryDevices) Exists(ctx context.Context, id string) error {
	_, err := d.R.Get(ctx, id)
	return err
}

// IDs lists the registered device ids (of only, when it is not nil), sorted.
func (d RegistryDevices) IDs(ctx context.Context, only []string) ([]string, error) {
	var list []registry.Device
	var err error
	if only == nil {
		list, err = d.R.List(ctx)
	} else {
		list, err = d.R.ListOf(ctx, only)
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
