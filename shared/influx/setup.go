package influx

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
)

// maxJSONResponse caps what JSON reads from InfluxDB's management API (dashboards, tasks, runs).
const maxJSONResponse = 8 << 20

// JSON calls one InfluxDB management API endpoint (path like "/api/v2/tasks") with an optional JSON body and decodes
// the JSON answer into out (nil to discard). Non-2xx answers are *HTTPError. The setup function uses it for the
// APIs this package does not wrap (tasks, runs, dashboards, bucket retention), which need no retry.
func (c *Client) JSON(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	u := c.url + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, err := c.do(ctx, method, u, "application/json", "", body)
	if err != nil {
		return fmt.Errorf("influx: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return fmt.Errorf("influx: %s %s: %w", method, path, err)
		}
		r = zr
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r, maxJSONResponse))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(r, maxJSONResponse)).Decode(out); err != nil {
		return fmt.Errorf("influx: %s %s: decoding answer: %w", method, path, err)
	}
	return nil
}
