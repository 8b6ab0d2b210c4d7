package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// safeTagValue is what Predicate accepts as a tag value: the device-id alphabet, nothing that could end the
// predicate's quoted string.
var safeTagValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
var safeName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Predicate builds `k1="v1" AND k2="v2"` for the delete API from validated pairs (key, value, key, value...).
func Predicate(kv ...string) (string, error) {
	if len(kv)%2 != 0 || len(kv) == 0 {
		return "", fmt.Errorf("influx: predicate needs key/value pairs")
	}
	p := ""
	for i := 0; i < len(kv); i += 2 {
		if !safeName.MatchString(kv[i]) || !safeTagValue.MatchString(kv[i+1]) {
			return "", fmt.Errorf("influx: unsafe predicate term %q", kv[i])
		}
		if p != "" {
			p += " AND "
		}
		p += kv[i] + `="` + kv[i+1] + `"`
	}
	return p, nil
}

// Delete removes the points of bucket in [start, stop) matching predicate (built with Predicate).
func (c *Client) Delete(ctx context.Context, bucket string, start, stop time.Time, predicate string) error {
	body, err := json.Marshal(map[string]string{
		"start":     start.UTC().Format(time.RFC3339Nano),
		"stop":      stop.UTC().Format(time.RFC3339Nano),
		"predicate": predicate,
	})
	if err != nil {
		return err
	}
	u := c.url + "/api/v2/delete?" + url.Values{"org": {c.org}, "bucket": {bucket}}.Encode()
	if err := c.post(ctx, u, "application/json", "", body); err != nil {
		return fmt.Errorf("influx: delete from %s: %w", bucket, err)
	}
	return nil
}

// AllTime is the widest range the delete API accepts.
var (
	AllTimeStart = time.Unix(0, 0).UTC()
	AllTimeStop  = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)
