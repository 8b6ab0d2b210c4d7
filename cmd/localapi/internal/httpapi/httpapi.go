// Package httpapi is the local stand-in for API Gateway (HTTP API, payload 2.0, Lambda authorizer) and for the
// Lambda Invoke API, in front of functions run by an Invoker.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/lambdarun"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

// Invoker runs one invocation of a function by logical id.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) (lambdarun.Result, error)
}

var _ Invoker = (*lambdarun.Runner)(nil)

// Size limits of the real services.
const (
	MaxHTTPBody     = 10 << 20  // API Gateway's own request payload limit
	MaxSyncPayload  = 6 << 20   // Invoke, RequestResponse: bounds the whole event, a base64-encoded body included
	MaxAsyncPayload = 256 << 10 // Invoke, Event
)

// Config configures a Gateway.
type Config struct {
	Routes    []samtpl.Route
	Functions map[string]*samtpl.Function
	Invoker   Invoker
	Logger    *slog.Logger
	// DeadLetterDir receives one JSON file per async event that failed every attempt.
	DeadLetterDir string
	// RetryDelay is the pause before the first async retry (doubled for each further retry); default 1s.
	RetryDelay time.Duration
	// AsyncWorkers bounds concurrent async invocations (default 4); AsyncQueue bounds waiting events (default 256).
	AsyncWorkers int
	AsyncQueue   int
	// EnqueueWait is how long an Event invocation waits for room in a full queue before 429 (default 10s).
	EnqueueWait time.Duration
	// Credentials are the ones the runner hands its functions: the Invoke API accepts only requests SigV4-signed
	// with them (403 otherwise, and always when they are empty).
	Credentials aws.Credentials
	// AllowHosts are Host names answered besides the loopback names (127.0.0.1, localhost, [::1]).
	AllowHosts []string
}

// Gateway serves the HTTP API routes and the Lambda Invoke API on one listener.
type Gateway struct {
	cfg    Config
	hosts  map[string]bool
	router *Router
	log    *slog.Logger
	async  *asyncQueue
}

// New builds a Gateway; call Start to run the async workers and Close to stop them.
func New(cfg Config) *Gateway {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.AsyncWorkers <= 0 {
		cfg.AsyncWorkers = 4
	}
	if cfg.AsyncQueue <= 0 {
		cfg.AsyncQueue = 256
	}
	if cfg.EnqueueWait <= 0 {
		cfg.EnqueueWait = 10 * time.Second
	}
	g := &Gateway{cfg: cfg, router: NewRouter(cfg.Routes), log: cfg.Logger, hosts: map[string]bool{}}
	for _, h := range cfg.AllowHosts {
		g.hosts[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	g.async = newAsyncQueue(g)
	return g
}

// Start runs the async workers until ctx ends.
func (g *Gateway) Start(ctx context.Context) { g.async.start(ctx) }

// Close waits for the async workers (after the Start ctx ended).
func (g *Gateway) Close() { g.async.wait() }

const invokePrefix = "/2015-03-31/functions/"

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !hostAllowed(r.Host, g.hosts) {
		g.log.Warn("refused: Host is not a loopback name (see -allow-host)", "host", r.Host, "path", r.URL.Path)
		writeMessage(w, http.StatusForbidden, "Forbidden")
		return
	}
	if strings.HasPrefix(r.URL.Path, invokePrefix) {
		g.serveInvoke(w, r)
		return
	}
	g.serveAPI(w, r)
}

// writeMessage answers the way API Gateway does for its own errors: {"message": "..."}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (g *Gateway) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("Apigw-Requestid", reqID)
	rt, params, ok := g.router.Match(r.Method, r.URL.EscapedPath())
	if !ok {
		g.log.Info("no route", "method", r.Method, "path", r.URL.Path, "status", 404)
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxHTTPBody+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > MaxHTTPBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := BuildHTTPEvent(r, body, rt, params, reqID, start)
	status := g.route(w, r, rt, ev)
	g.log.Info("request", "route", rt.Key(), "path", r.URL.Path, "function", rt.Function, "status", status,
		"ms", time.Since(start).Milliseconds(), "requestId", reqID)
}

// route runs the authorizer (if any) then the function, and writes the answer; it returns the status written.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, rt samtpl.Route, ev eventsRequest) int {
	ctx := r.Context()
	if a := rt.Authorizer; a != nil {
		identity, ok := identityValues(a.IdentitySources, ev)
		if !ok {
			writeMessage(w, http.StatusUnauthorized, "Unauthorized")
			return http.StatusUnauthorized
		}
		payload, _ := json.Marshal(BuildAuthorizerEvent(ev, identity))
		res, err := g.invokeFor(ctx, a.Function, payload)
		if err != nil || res.FunctionError != "" {
			g.logFailure(ctx, a.Function, res, err)
			writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
			return http.StatusInternalServerError
		}
		allowed, actx, err := authorizerDecision(res.Payload, a.SimpleResponses)
		if err != nil {
			g.log.Error("authorizer reply invalid", "function", a.Function, "error", err.Error())
			writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
			return http.StatusInternalServerError
		}
		if !allowed {
			writeMessage(w, http.StatusForbidden, "Forbidden")
			return http.StatusForbidden
		}
		ev.RequestContext.Authorizer = &authorizerDescription{Lambda: actx}
		if ev.RequestContext.Authorizer.Lambda == nil {
			ev.RequestContext.Authorizer.Lambda = map[string]any{}
		}
	}
	payload, _ := json.Marshal(ev)
	if len(payload) > MaxSyncPayload {
		// Lambda refuses the invocation; API Gateway answers the caller 413
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return http.StatusRequestEntityTooLarge
	}
	res, err := g.invokeFor(ctx, rt.Function, payload)
	if err != nil {
		if errors.Is(err, lambdarun.ErrUnavailable) {
			g.log.Error("function unavailable", "function", rt.Function, "error", err.Error())
			writeMessage(w, http.StatusBadGateway, "Bad Gateway: function "+rt.Function+" is unavailable (see the local API log)")
			return http.StatusBadGateway
		}
		if ctx.Err() != nil {
			return 499 // the client went away
		}
		g.logFailure(ctx, rt.Function, res, err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError
	}
	if res.FunctionError != "" {
		g.logFailure(ctx, rt.Function, res, nil)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError
	}
	out := MapResponse(res.Payload)
	if out.Invalid {
		g.log.Error("function reply is not a valid payload 2.0 response", "function", rt.Function)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError
	}
	for k, vs := range out.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(out.Status)
	_, _ = w.Write(out.Body)
	return out.Status
}

// invokeFor bounds an invocation by the function's timeout (plus a margin for the emulator).
func (g *Gateway) invokeFor(ctx context.Context, fn string, payload []byte) (lambdarun.Result, error) {
	timeout := 30 * time.Second
	if f, ok := g.cfg.Functions[fn]; ok && f.Timeout > 0 {
		timeout = time.Duration(f.Timeout)*time.Second + 5*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return g.cfg.Invoker.Invoke(ctx, fn, payload)
}

func (g *Gateway) logFailure(_ context.Context, fn string, res lambdarun.Result, err error) {
	if err != nil {
		g.log.Error("invocation failed", "function", fn, "error", err.Error())
		return
	}
	var e struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	_ = json.Unmarshal(res.Payload, &e)
	g.log.Error("function error", "function", fn, "errorType", e.ErrorType, "errorMessage", e.ErrorMessage)
}
