package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/domain"
)

// EnsureBucket returns the id of the named bucket, creating it with the given retention (0 = infinite) when it
// does not exist. Two concurrent callers may race; the loser finds the winner's bucket (409 → lookup).
func (c *Client) EnsureBucket(ctx context.Context, name string, retention time.Duration) (id string, created bool, err error) {
	if id, err := c.BucketID(ctx, name); err == nil {
		return id, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", false, err
	}
	orgID, err := c.OrgID(ctx)
	if err != nil {
		return "", false, err
	}
	var rules []domain.RetentionRule
	if retention > 0 {
		rules = append(rules, domain.RetentionRule{Type: ptr(domain.RetentionRuleTypeExpire), EverySeconds: int64(retention / time.Second)})
	}
	b, err := c.c.BucketsAPI().CreateBucketWithNameWithID(ctx, orgID, name, rules...)
	if err != nil {
		if StatusOf(err) == http.StatusConflict || StatusOf(err) == http.StatusUnprocessableEntity {
			id, err := c.BucketID(ctx, name)
			return id, false, err
		}
		return "", false, fmt.Errorf("influx: creating bucket %q: %w", name, err)
	}
	c.cacheBucket(name, *b.Id)
	return *b.Id, true, nil
}

// DeleteBucket removes a bucket by name (tests and tear-down); a missing bucket is not an error.
func (c *Client) DeleteBucket(ctx context.Context, name string) error {
	id, err := c.BucketID(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.c.BucketsAPI().DeleteBucketWithID(ctx, id); err != nil && StatusOf(err) != http.StatusNotFound {
		return fmt.Errorf("influx: deleting bucket %q: %w", name, err)
	}
	c.mu.Lock()
	delete(c.buckets, name)
	c.mu.Unlock()
	return nil
}

func ptr[T any](v T) *T { return &v }

// BucketRetention reads a bucket's retention period (0 = infinite). It needs read access to the bucket; a missing
// bucket is ErrNotFound.
func (c *Client) BucketRetention(ctx context.Context, name string) (time.Duration, error) {
	b, err := c.findBucket(ctx, name)
	if err != nil {
		return 0, err
	}
	var every int64
	for _, r := range b.RetentionRules {
		if r.EverySeconds > 0 && (every == 0 || r.EverySeconds < every) {
			every = r.EverySeconds
		}
	}
	return time.Duration(every) * time.Second, nil
}
