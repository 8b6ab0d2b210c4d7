package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxSendAttempts bounds the retries of the answer (a lost answer holds the stack until ServiceTimeout).
const maxSendAttempts = 3

// send PUTs the response document to the pre-signed URL. The URL's signature covers an empty Content-Type.
func (h *CustomResource) send(ctx context.Context, responseURL string, r response) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// the answer must go out even when the run's context was cancelled, but never past the invocation's deadline
	send := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		send, cancel = context.WithDeadline(send, dl)
		defer cancel()
	}
	pause := h.RetryPause
	for attempt := 1; ; attempt++ {
		err = h.put(send, responseURL, body)
		if err == nil || attempt == maxSendAttempts || send.Err() != nil {
			return err
		}
		select {
		case <-time.After(pause):
		case <-send.Done():
			return err
		}
		pause *= 2
	}
}

func (h *CustomResource) put(ctx context.Context, responseURL string, body []byte) error {
	if h.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.AttemptTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, responseURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = nil
	resp, err := h.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the pre-signed URL's query is a credential: keep it out of the logs
		}
		return fmt.Errorf("setup: sending the CloudFormation response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("setup: CloudFormation response URL answered %d", resp.StatusCode)
	}
	return nil
}

// checkResponseURL accepts https URLs, and plain http only to a loopback address (tests, local runs).
func checkResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("setup: the event has no valid ResponseURL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return errors.New("setup: the ResponseURL must be https")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
