package influx

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// TokenSource reads the current token again (the function's SSM parameter): a deploy that replaces a role token
// revokes the old one once the update is done, and a warm function still holding it gets 401s until it re-reads.
type TokenSource func(ctx context.Context) (string, error)

// DefaultRefreshEvery bounds how often one client re-reads its token: SSM allows about 40 GetParameter calls a second
// per account by default, and a token that is simply wrong must not turn every request into one.
const DefaultRefreshEvery = 10 * time.Second

// refreshTimeout bounds one re-read (an SSM call) on the request path.
const refreshTimeout = 3 * time.Second

// tokenTransport sends every request with the client's current token and, on a 401, re-reads the token once
// (at most once per every, one re-read at a time) and repeats the request once when the token changed.
type tokenTransport struct {
	base    http.RoundTripper
	token   atomic.Pointer[string]
	refresh TokenSource
	every   time.Duration
	now     func() time.Time

	mu   sync.Mutex // one re-read at a time
	last time.Time  // of the last re-read
}

func newTokenTransport(base http.RoundTripper, token string, refresh TokenSource, every time.Duration) *tokenTransport {
	if every <= 0 {
		every = DefaultRefreshEvery
	}
	t := &tokenTransport{base: base, refresh: refresh, every: every, now: time.Now}
	t.token.Store(&token)
	return t
}

func (t *tokenTransport) current() string { return *t.token.Load() }

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	used := t.current()
	resp, err := t.base.RoundTrip(withToken(req, used))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || t.refresh == nil {
		return resp, err
	}
	fresh, ok := t.renew(req.Context(), used)
	if !ok {
		return resp, nil
	}
	again := withToken(req, fresh)
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil // the body cannot be sent twice; the next request uses the new token
		}
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		again.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return t.base.RoundTrip(again)
}

// renew returns a token other than used: one another request already fetched, or a re-read one. ok is false when
// a re-read is not due yet, fails, or brings the same token.
func (t *tokenTransport) renew(ctx context.Context, used string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.current(); cur != used {
		return cur, true
	}
	now := t.now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		return "", false
	}
	t.last = now
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	fresh, err := t.refresh(ctx)
	if err != nil || fresh == "" || fresh == used {
		return "", false
	}
	t.token.Store(&fresh)
	return fresh, true
}

// withToken is a copy of req carrying token (a RoundTripper must not change the request it is given).
func withToken(req *http.Request, token string) *http.Request {
	r := req.Clone(req.Context())
	if token != "" {
		r.Header.Set("Authorization", "Token "+token)
	}
	return r
}

// CloseIdleConnections lets http.Client.CloseIdleConnections (Client.Close) reach the connection pool.
func (t *tokenTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
