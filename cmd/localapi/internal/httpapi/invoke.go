package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/lambdarun"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

// writeLambdaError answers as the Lambda service does: the error code in X-Amzn-ErrorType (what the SDK reads).
func writeLambdaError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}

// serveInvoke implements POST /2015-03-31/functions/{name}/invocations.
func (g *Gateway) serveInvoke(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("X-Amzn-Requestid", reqID)
	rest := strings.TrimPrefix(r.URL.Path, invokePrefix)
	name, ok := strings.CutSuffix(rest, "/invocations")
	if !ok || r.Method != http.MethodPost || name == "" {
		writeLambdaError(w, http.StatusNotFound, "UnknownOperationException", "unknown operation")
		return
	}
	fn := samtpl.FunctionName(name)
	f, ok := g.cfg.Functions[fn]
	if !ok {
		writeLambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+samtpl.FunctionARN(fn))
		return
	}
	typ := r.Header.Get("X-Amz-Invocation-Type")
	limit := int64(MaxSyncPayload)
	if typ == "Event" {
		limit = MaxAsyncPayload
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeLambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body")
		return
	}
	if int64(len(payload)) > limit {
		writeLambdaError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
			fmt.Sprintf("request payload larger than %d bytes", limit))
		return
	}
	if err := verifySigV4(r.Context(), r, payload, g.cfg.Credentials, time.Now()); err != nil {
		g.log.Warn("Invoke API call refused", "function", fn, "reason", err.Error())
		writeLambdaError(w, http.StatusForbidden, "InvalidSignatureException", "the request must be signed (SigV4) with the credentials the local API gives its functions")
		return
	}
	if len(payload) > 0 && !json.Valid(payload) {
		writeLambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not parse request body into json")
		return
	}
	switch typ {
	case "", "RequestResponse":
		res, err := g.invokeFor(r.Context(), fn, payload)
		if err != nil {
			g.log.Error("invoke failed", "function", fn, "error", err.Error())
			if errors.Is(err, lambdarun.ErrUnavailable) {
				writeLambdaError(w, http.StatusBadGateway, "ServiceException", "function "+fn+" is unavailable (see the local API log)")
				return
			}
			writeLambdaError(w, http.StatusInternalServerError, "ServiceException", "invocation failed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		if res.FunctionError != "" {
			g.logFailure(r.Context(), fn, res, nil)
			w.Header().Set("X-Amz-Function-Error", res.FunctionError)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.Payload)
	case "Event":
		if err := g.async.enqueue(r.Context(), asyncEvent{fn: f, payload: payload, requestID: reqID}); err != nil {
			writeLambdaError(w, http.StatusTooManyRequests, "TooManyRequestsException", "the local async queue is full")
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
	default:
		writeLambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "unknown X-Amz-Invocation-Type")
	}
}

type asyncEvent struct {
	fn        *samtpl.Function
	payload   []byte
	requestID string
}

// asyncQueue is Lambda's internal queue for Event invocations: bounded, drained by a fixed number of workers, so a
// burst of fan-out applies backpressure instead of spawning goroutines without limit.
type asyncQueue struct {
	g  *Gateway
	ch chan asyncEvent
	wg sync.WaitGroup
}

func newAsyncQueue(g *Gateway) *asyncQueue {
	return &asyncQueue{g: g, ch: make(chan asyncEvent, g.cfg.AsyncQueue)}
}

func (q *asyncQueue) enqueue(ctx context.Context, ev asyncEvent) error {
	select {
	case q.ch <- ev:
		return nil
	default:
	}
	t := time.NewTimer(q.g.cfg.EnqueueWait)
	defer t.Stop()
	select {
	case q.ch <- ev:
		return nil
	case <-t.C:
		return errors.New("queue full")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *asyncQueue) start(ctx context.Context) {
	for i := 0; i < q.g.cfg.AsyncWorkers; i++ {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-q.ch:
					q.run(ctx, ev)
				}
			}
		}()
	}
}

func (q *asyncQueue) wait() { q.wg.Wait() }

// run makes 1 + MaximumRetryAttempts attempts with growing short delays, then dead-letters the event.
func (q *asyncQueue) run(ctx context.Context, ev asyncEvent) {
	g := q.g
	attempts := 1 + ev.fn.Async.MaximumRetryAttempts
	var res lambdarun.Result
	var err error
	delay := g.cfg.RetryDelay
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				g.log.Warn("async event dropped at shutdown", "function", ev.fn.LogicalID, "requestId", ev.requestID)
				return
			case <-time.After(delay):
			}
			delay *= 2
		}
		res, err = g.invokeFor(ctx, ev.fn.LogicalID, ev.payload)
		if err == nil && res.FunctionError == "" {
			return
		}
		if ctx.Err() != nil {
			return
		}
		g.logFailure(ctx, ev.fn.LogicalID, res, err)
		g.log.Warn("async invocation failed", "function", ev.fn.LogicalID, "requestId", ev.requestID, "attempt", i+1, "of", attempts)
	}
	file, werr := writeDeadLetter(g.cfg.DeadLetterDir, ev, attempts, res, err, time.Now())
	if werr != nil {
		g.log.Error("writing the dead-letter record failed", "function", ev.fn.LogicalID, "requestId", ev.requestID, "error", werr.Error())
		return
	}
	g.log.Error("async event failed after all retries: dead-lettered", "function", ev.fn.LogicalID, "requestId", ev.requestID,
		"attempts", attempts, "destination", ev.fn.Async.OnFailure, "file", file)
}

// DeadLetterRecord is the shape of a Lambda OnFailure destination record.
type DeadLetterRecord struct {
	Version        string `json:"version"`
	Timestamp      string `json:"timestamp"`
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

func writeDeadLetter(dir string, ev asyncEvent, attempts int, res lambdarun.Result, invokeErr error, now time.Time) (string, error) {
	if dir == "" {
		return "", errors.New("no dead-letter folder configured")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	var rec DeadLetterRecord
	rec.Version = "1.0"
	rec.Timestamp = now.UTC().Format("2006-01-02T15:04:05.000Z")
	rec.RequestContext.RequestID = ev.requestID
	rec.RequestContext.FunctionArn = samtpl.FunctionARN(ev.fn.LogicalID) + ":$LATEST"
	rec.RequestContext.Condition = "RetriesExhausted"
	rec.RequestContext.ApproximateInvokeCount = attempts
	rec.RequestPayload = jsonOrString(ev.payload)
	rec.ResponseContext.ExecutedVersion = "$LATEST"
	if invokeErr != nil {
		rec.ResponseContext.StatusCode = http.StatusInternalServerError
		b, _ := json.Marshal(map[string]string{"errorType": "ServiceException", "errorMessage": invokeErr.Error()})
		rec.ResponsePayload = b
	} else {
		rec.ResponseContext.StatusCode = http.StatusOK
		rec.ResponseContext.FunctionError = res.FunctionError
		rec.ResponsePayload = jsonOrString(res.Payload)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", err
	}
	name := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.json", ev.fn.LogicalID, now.UTC().Format("20060102T150405.000Z"), ev.requestID))
	// written aside, then renamed: a reader polling the folder never sees a half-written record
	if err := os.WriteFile(name+".tmp", b, 0o600); err != nil {
		return "", err
	}
	return name, os.Rename(name+".tmp", name)
}

func jsonOrString(b []byte) json.RawMessage {
	if len(b) > 0 && json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}
