package lambdarun

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

// runtimeAPI serves the Lambda Runtime API (2018-06-01) to one bootstrap process. It listens on a loopback port
// of its own, but answers only requests whose path starts with a secret made for this process (handed to it in
// AWS_LAMBDA_RUNTIME_API, which aws-lambda-go joins as "http://" + value + "/2018-06-01/...") and whose Host is
// exactly that address (a DNS-rebinding page sends its own name): everything else is 404, so no other client can
// take an event or post a result. Invocations reach it only in-process (Pool.Invoke), never over a port.
type runtimeAPI struct {
	ln     net.Listener
	srv    *http.Server
	host   string // the only Host accepted: "127.0.0.1:port"
	secret string

	events  chan *invocation // the next invocation for the bootstrap's `next`
	ready   chan struct{}    // closed at the bootstrap's first `next`: its init is done
	readyMu sync.Once

	mu      sync.Mutex
	current *invocation // handed out, not answered yet
	initErr []byte      // what the bootstrap posted to /runtime/init/error
}

// invocation is one event and where its outcome goes (buffered: the answer never blocks the handler).
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	arn      string
	done     chan Result
}

const runtimePrefix = "/2018-06-01/runtime/"

func newRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the kernel picks a free port: no window for another to take it
	if err != nil {
		return nil, err
	}
	rt := &runtimeAPI{ln: ln, host: ln.Addr().String(), secret: devstack.RandomHex(32),
		events: make(chan *invocation, 1), ready: make(chan struct{})}
	rt.srv = &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = rt.srv.Serve(ln) }()
	return rt, nil
}

// Address is the value of AWS_LAMBDA_RUNTIME_API for the bootstrap.
func (rt *runtimeAPI) Address() string { return rt.host + "/" + rt.secret }

// close stops serving; a `next` still waiting is answered (the bootstrap is being stopped anyway).
func (rt *runtimeAPI) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = rt.srv.Shutdown(ctx)
	_ = rt.srv.Close()
}

func (rt *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := rt.authorized(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case r.Method == http.MethodGet && rest == "invocation/next":
		rt.next(w, r)
	case r.Method == http.MethodPost && rest == "init/error":
		rt.mu.Lock()
		rt.initErr = readCapped(r.Body)
		rt.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(rest, "invocation/"):
		id, what, _ := strings.Cut(strings.TrimPrefix(rest, "invocation/"), "/")
		if what != "response" && what != "error" {
			http.NotFound(w, r)
			return
		}
		rt.answer(w, r, id, what == "error")
	default:
		http.NotFound(w, r)
	}
}

// authorized checks the Host and the secret path segment (in constant time) and returns the path after
// /<secret>/2018-06-01/runtime/.
func (rt *runtimeAPI) authorized(r *http.Request) (string, bool) {
	if r.Host != rt.host {
		return "", false
	}
	p := r.URL.Path
	if len(p) < 1+len(rt.secret) || p[0] != '/' {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(p[1:1+len(rt.secret)]), []byte(rt.secret)) != 1 {
		return "", false
	}
	rest, ok := strings.CutPrefix(p[1+len(rt.secret):], runtimePrefix)
	return rest, ok
}

// next hands the bootstrap its next event, waiting for one as long as the bootstrap waits.
func (rt *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	rt.readyMu.Do(func() { close(rt.ready) })
	select {
	case inv := <-rt.events:
		rt.mu.Lock()
		rt.current = inv
		rt.mu.Unlock()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", inv.arn)
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+devstack.RandomHex(12)+";Sampled=0")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
	}
}

// answer records the bootstrap's response or error for the invocation it was handed.
func (rt *runtimeAPI) answer(w http.ResponseWriter, r *http.Request, id string, failed bool) {
	rt.mu.Lock()
	inv := rt.current
	if inv == nil || inv.id != id {
		rt.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest) // Lambda's InvalidRequestID
		return
	}
	rt.current = nil
	rt.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseBytes+1))
	var res Result
	switch {
	case err != nil:
		res = Result{Payload: errorPayload("Runtime.Unknown", "reading the function's answer: "+err.Error()), FunctionError: "Unhandled"}
	case len(body) > MaxResponseBytes:
		res = Result{Payload: errorPayload("Function.ResponseSizeTooLarge", "response larger than 6 MB"), FunctionError: "Unhandled"}
	case failed:
		if !IsErrorPayload(body) {
			body = errorPayload(r.Header.Get("Lambda-Runtime-Function-Error-Type"), string(body))
		}
		res = Result{Payload: body, FunctionError: "Unhandled"}
	default:
		res = Result{Payload: body}
	}
	inv.done <- res
	w.WriteHeader(http.StatusAccepted)
}

// initError is what the bootstrap posted to /runtime/init/error, if anything.
func (rt *runtimeAPI) initError() []byte {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.initErr
}

func readCapped(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	return b
}

// errInitTimeout: the bootstrap did not ask for its first event within Lambda's init limit.
var errInitTimeout = errors.New("the bootstrap did not call the Runtime API's next within 10 s (Lambda's init limit)")

// initErrorPayload is the function error for a bootstrap that failed before its first `next`.
func initErrorPayload(posted []byte, cause string) []byte {
	var m map[string]any
	if json.Unmarshal(posted, &m) == nil && m["errorMessage"] != nil {
		if _, ok := m["errorType"]; !ok {
			m["errorType"] = "Runtime.InitError"
		}
		b, _ := json.Marshal(m)
		return b
	}
	return errorPayload("Runtime.ExitError", cause)
}
