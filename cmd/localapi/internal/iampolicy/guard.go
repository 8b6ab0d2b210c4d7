package iampolicy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

// maxBody bounds a request body the guard reads (DynamoDB's own limit on a request is 16 MB).
const maxBody = 16 << 20

// Guard is the DynamoDB endpoint the local functions are given: one path per function (Endpoint), whose calls are
// forwarded to the real endpoint only when that function's policy allows them. A refused call gets what DynamoDB
// answers: 400 AccessDeniedException (not retried by the SDK).
type Guard struct {
	policies map[string]Policy
	tables   map[string]Table
	arn      func(table string) string
	proxy    *httputil.ReverseProxy
	log      *slog.Logger
	srv      *http.Server
	base     string
}

// Start listens on loopback and serves until Close. upstream is the DynamoDB endpoint; policies are by function
// logical id (a function without one may call nothing).
func Start(upstream string, policies map[string]Policy, tables map[string]Table, arn func(string) string, log *slog.Logger) (*Guard, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("iampolicy: DynamoDB endpoint %q: not a URL", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &Guard{policies: policies, tables: tables, arn: arn, log: log, base: "http://" + ln.Addr().String(),
		proxy: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}}
	// the endpoint down (a test stops it): what DynamoDB answers when it cannot serve, which the SDK retries
	g.proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Warn("IAM guard: the DynamoDB endpoint did not answer", "endpoint", upstream, "error", err.Error())
		answer(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the DynamoDB endpoint did not answer")
	}
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = g.srv.Serve(ln) }()
	return g, nil
}

// Endpoint is the DynamoDB endpoint URL for function id (the SDK keeps an endpoint's path).
func (g *Guard) Endpoint(id string) string { return g.base + "/" + id }

// Close stops the listener.
func (g *Guard) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.srv.Shutdown(ctx)
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		answer(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request body over 16 MB")
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "DynamoDB_20120810.")
	if !ok {
		answer(w, http.StatusBadRequest, "UnknownOperationException", "X-Amz-Target "+target+" is not a DynamoDB operation")
		return
	}
	policy, known := g.policies[id]
	accesses, err := Accesses(op, body, g.tables, g.arn)
	if err != nil {
		g.log.Error(devstack.RefusalMark+": it cannot evaluate it", "function", id, "error", err.Error())
		answer(w, http.StatusBadRequest, "AccessDeniedException", "the local IAM stand-in cannot evaluate this call: "+err.Error())
		return
	}
	for _, a := range accesses {
		if !known || !policy.Allows(a) {
			g.log.Error(devstack.RefusalMark+": the function's template policy does not allow it (AWS would refuse it)",
				"function", id, "action", a.Action, "resource", a.Resource,
				"leadingKeys", a.Keys["dynamodb:LeadingKeys"], "attributes", a.Keys["dynamodb:Attributes"])
			answer(w, http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf("User: arn:aws:sts::local:assumed-role/%s/%s "+
				"is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
				id, id, a.Action, a.Resource, a.Action))
			return
		}
	}
	r.Body, r.ContentLength, r.URL.Path = io.NopCloser(bytes.NewReader(body)), int64(len(body)), "/"+rest
	g.proxy.ServeHTTP(w, r)
}

// answer writes a DynamoDB-style error.
func answer(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + code, "message": msg})
}
