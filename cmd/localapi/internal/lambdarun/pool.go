// Package lambdarun runs function bootstraps the way Lambda does, under the AWS Lambda Runtime Interface Emulator
// (RIE): a small pool of emulator processes per function, each serving one invocation at a time (the emulator
// panics on concurrent ones), started lazily and restarted when they die.
package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
)

// MaxResponseBytes caps a function's reply (Lambda's synchronous payload limit is 6 MB).
const MaxResponseBytes = 6 << 20

// Result is one invocation's outcome. FunctionError is "Unhandled" when the function failed (the emulator replied
// with an errorMessage), as Lambda's X-Amz-Function-Error header says.
type Result struct {
	Payload       []byte
	FunctionError string
}

// ErrUnavailable wraps failures to run the function at all (no bootstrap, emulator would not start).
var ErrUnavailable = errors.New("function unavailable")

// Spec describes one function to run.
type Spec struct {
	Name      string
	Bootstrap string   // path of the built bootstrap; "" when the build failed
	BuildErr  error    // why there is no bootstrap
	Env       []string // KEY=VALUE, the complete environment of the function
	Timeout   time.Duration
	PoolSize  int
	Output    io.Writer // function and emulator output (already prefixed by the caller)
}

// Pool serialises invocations per emulator process.
type Pool struct {
	spec  Spec
	rie   string
	slots chan *instance

	mu            sync.Mutex
	all           []*instance
	closed        bool
	starts        int
	maxConcurrent int // guarded by statsMu
}

// NewPool prepares a pool; no process starts before the first invocation.
func NewPool(rie string, spec Spec) *Pool {
	if spec.PoolSize < 1 {
		spec.PoolSize = 1
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 3 * time.Second
	}
	if spec.Output == nil {
		spec.Output = io.Discard
	}
	p := &Pool{spec: spec, rie: rie, slots: make(chan *instance, spec.PoolSize)}
	for i := 0; i < spec.PoolSize; i++ {
		in := &instance{pool: p, index: i}
		p.all = append(p.all, in)
		p.slots <- in
	}
	return p
}

// Name is the function's logical id.
func (p *Pool) Name() string { return p.spec.Name }

// instance is one emulator process; it is out of the slots channel while it serves an invocation, which is what
// guarantees one invocation at a time per process.
type instance struct {
	pool      *Pool
	index     int
	proc      *testenv.Proc
	addr      string // emulator invoke address
	client    *http.Client
	inFlight  int32 // for tests: must never exceed 1
	startedAt time.Time
}

// Stats describe what the pool did (tests and benchmarks read them).
type Stats struct {
	Starts        int
	MaxConcurrent int // highest number of simultaneous invocations on any single process: must stay 1
}

var statsMu sync.Mutex

// Invoke runs one invocation on a free emulator process, waiting for one if all are busy.
func (p *Pool) Invoke(ctx context.Context, payload []byte) (Result, error) {
	if p.spec.Bootstrap == "" {
		return Result{}, fmt.Errorf("%w: %s was not built: %v", ErrUnavailable, p.spec.Name, p.spec.BuildErr)
	}
	var in *instance
	select {
	case in = <-p.slots:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { p.slots <- in }()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return Result{}, fmt.Errorf("%w: %s: shutting down", ErrUnavailable, p.spec.Name)
	}
	if !in.alive() {
		if err := in.start(ctx); err != nil {
			return Result{}, fmt.Errorf("%w: %s: starting the emulator: %v", ErrUnavailable, p.spec.Name, err)
		}
	}
	in.enter()
	defer in.leave()
	return in.invoke(ctx, payload)
}

func (in *instance) enter() {
	statsMu.Lock()
	in.inFlight++
	if int(in.inFlight) > in.pool.maxConcurrent {
		in.pool.maxConcurrent = int(in.inFlight)
	}
	statsMu.Unlock()
}

func (in *instance) leave() {
	statsMu.Lock()
	in.inFlight--
	statsMu.Unlock()
}

func (in *instance) alive() bool {
	if in.proc == nil {
		return false
	}
	select {
	case <-in.proc.Done():
		return false
	default:
		return true
	}
}

// startAttempts bounds start's tries: a port FreePort found free can be taken before the emulator binds it (an
// outgoing connection's ephemeral port), and the emulator then exits at once; new ports fix that.
const startAttempts = 3

func (in *instance) start(ctx context.Context) error {
	var err error
	for range startAttempts {
		if err = in.startOnce(ctx); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (in *instance) startOnce(ctx context.Context) error {
	p := in.pool
	apiPort, err := testenv.FreePort()
	if err != nil {
		return err
	}
	rtPort, err := testenv.FreePort()
	if err != nil {
		return err
	}
	in.addr = "127.0.0.1:" + strconv.Itoa(apiPort)
	cmd := exec.Command(p.rie, "--runtime-interface-emulator-address", in.addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(rtPort), p.spec.Bootstrap)
	cmd.Env = p.spec.Env
	cmd.Stdout, cmd.Stderr = p.spec.Output, p.spec.Output
	// Own process group, so stopping kills the emulator and the bootstrap it forked; SIGKILL takes the emulator
	// down if this process dies without cleaning up.
	proc, err := testenv.Start(cmd, syscall.SIGKILL)
	if err != nil {
		return err
	}
	in.proc, in.startedAt = proc, time.Now()
	in.client = &http.Client{Timeout: p.spec.Timeout + 5*time.Second}
	p.mu.Lock()
	p.starts++
	p.mu.Unlock()
	// The emulator listens within milliseconds; bounded wait.
	if err := testenv.WaitListen(ctx, in.addr, proc.Done(), 10*time.Second); err != nil {
		in.kill()
		return fmt.Errorf("the emulator: %w", err)
	}
	return nil
}

func (in *instance) invoke(ctx context.Context, payload []byte) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+in.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := in.client.Do(req)
	if err != nil {
		// A half-finished invocation leaves the emulator in an unknown state: replace the process.
		in.kill()
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("%w: %s: invoking: %v", ErrUnavailable, in.pool.spec.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		in.kill()
		return Result{}, fmt.Errorf("%w: %s: reading the reply: %v", ErrUnavailable, in.pool.spec.Name, err)
	}
	if len(body) > MaxResponseBytes {
		return Result{Payload: errorPayload("Function.ResponseSizeTooLarge", "response larger than 6 MB"), FunctionError: "Unhandled"}, nil
	}
	res := Result{Payload: body}
	if len(body) > 0 && !json.Valid(body) {
		// The emulator answers a timeout (and some runtime failures) in plain text; Lambda reports those as a
		// function error with a JSON error document.
		typ := "Runtime.Unknown"
		if bytes.Contains(body, []byte("timed out")) {
			typ = "Sandbox.Timedout"
		}
		return Result{Payload: errorPayload(typ, string(bytes.TrimSpace(body))), FunctionError: "Unhandled"}, nil
	}
	if resp.StatusCode != http.StatusOK || IsErrorPayload(body) {
		res.FunctionError = "Unhandled"
		if !IsErrorPayload(body) {
			res.Payload = errorPayload("Runtime.Unknown", fmt.Sprintf("emulator answered %d", resp.StatusCode))
		}
	}
	return res, nil
}

// IsErrorPayload reports whether a reply is a Lambda error document ({"errorMessage": ..., "errorType": ...}),
// which is how the emulator reports a panic, a returned error, an init failure or a timeout.
func IsErrorPayload(b []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, hasMsg := m["errorMessage"]
	_, hasType := m["errorType"]
	_, hasStatus := m["statusCode"]
	return hasMsg && (hasType || !hasStatus)
}

func errorPayload(typ, msg string) []byte {
	b, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	return b
}

// kill stops the instance's process group (emulator and bootstrap) and waits for it.
func (in *instance) kill() {
	if in.proc == nil {
		return
	}
	// Stop also kills what is left of the group: the bootstrap may outlive the emulator.
	in.proc.Stop(syscall.SIGTERM, 2*time.Second)
	in.proc = nil
}

// Close stops every process of the pool, waiting for in-flight invocations up to ctx.
func (p *Pool) Close(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for i := 0; i < p.spec.PoolSize; i++ {
		select {
		case in := <-p.slots:
			in.kill()
		case <-ctx.Done():
			// Still busy: kill anyway (the invocation fails), leaving no process behind.
			p.mu.Lock()
			for _, in := range p.all {
				if in.proc != nil {
					_ = in.proc.Kill()
				}
			}
			p.mu.Unlock()
			return
		}
	}
}

// Stats reports how many processes were started and the highest concurrency seen on one process.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	s := p.starts
	p.mu.Unlock()
	statsMu.Lock()
	defer statsMu.Unlock()
	return Stats{Starts: s, MaxConcurrent: p.maxConcurrent}
}
