// Package lambdarun runs function bootstraps the way Lambda does: a small pool of bootstrap processes per function,
// each serving one invocation at a time, started lazily (a cold start) and restarted when they die or time out.
// Each process reads its events from a Lambda Runtime API this package serves to it alone (runtimeapi.go); an
// invocation reaches it only through Pool.Invoke, in the local API's own process.
package lambdarun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

// MaxResponseBytes caps a function's reply (Lambda's synchronous payload limit is 6 MB).
const MaxResponseBytes = 6 << 20

// Result is one invocation's outcome. FunctionError is "Unhandled" when the function failed (it posted an error,
// exited, timed out or answered too much), as Lambda's X-Amz-Function-Error header says.
type Result struct {
	Payload       []byte
	FunctionError string
}

// ErrUnavailable wraps failures to run the function at all (no bootstrap, the process would not start).
var ErrUnavailable = errors.New("function unavailable")

// Spec describes one function to run.
type Spec struct {
	Name      string
	Bootstrap string   // path of the built bootstrap; "" when the build failed
	BuildErr  error    // why there is no bootstrap
	Env       []string // KEY=VALUE, the complete environment of the function
	Timeout   time.Duration
	PoolSize  int
	Output    io.Writer // the function's output and the START/END/REPORT lines (already prefixed by the caller)
}

// Pool serialises invocations per bootstrap process.
type Pool struct {
	spec  Spec
	slots chan *instance

	mu            sync.Mutex
	all           []*instance
	closed        bool
	starts        int
	maxConcurrent int // guarded by statsMu
}

// NewPool prepares a pool; no process starts before the first invocation.
func NewPool(spec Spec) *Pool {
	if spec.PoolSize < 1 {
		spec.PoolSize = 1
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 3 * time.Second
	}
	if spec.Output == nil {
		spec.Output = io.Discard
	}
	p := &Pool{spec: spec, slots: make(chan *instance, spec.PoolSize)}
	for i := 0; i < spec.PoolSize; i++ {
		in := &instance{pool: p, index: i}
		p.all = append(p.all, in)
		p.slots <- in
	}
	return p
}

// Name is the function's logical id.
func (p *Pool) Name() string { return p.spec.Name }

// instance is one bootstrap process with its Runtime API; it is out of the slots channel while it serves an
// invocation, which is what guarantees one invocation at a time per process.
type instance struct {
	pool      *Pool
	index     int
	proc      *devstack.Proc
	rt        *runtimeAPI
	inFlight  int32 // for tests: must never exceed 1
	startedAt time.Time
}

// Stats describe what the pool did (tests and benchmarks read them).
type Stats struct {
	Starts        int
	MaxConcurrent int // highest number of simultaneous invocations on any single process: must stay 1
}

var statsMu sync.Mutex

// Invoke runs one invocation on a free process, waiting for one if all are busy.
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
	for attempt := 0; ; attempt++ {
		if !in.alive() {
			if res, err := in.start(ctx); err != nil || res != nil {
				if err != nil {
					return Result{}, fmt.Errorf("%w: %s: starting the bootstrap: %v", ErrUnavailable, p.spec.Name, err)
				}
				return *res, nil // its init failed: a function error, as Lambda reports it
			}
		}
		in.enter()
		res, err := in.invoke(ctx, payload)
		in.leave()
		if errors.Is(err, errNotStarted) && attempt == 0 {
			continue // the event was never taken: it runs on a fresh process, as Lambda's next invocation would
		}
		if errors.Is(err, errNotStarted) {
			return Result{Payload: errorPayload("Runtime.ExitError", "Runtime exited before taking the event"), FunctionError: "Unhandled"}, nil
		}
		return res, err
	}
}

// errNotStarted: the process exited before it took the event (aws-lambda-go exits just after reporting a panic, so
// a process can look alive when it is handed the next event).
var errNotStarted = errors.New("lambdarun: the process exited before taking the event")

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

// initLimit is Lambda's limit on a function's init phase: the bootstrap must ask for its first event by then.
const initLimit = 10 * time.Second

// start runs the bootstrap with its Runtime API and waits until it asks for its first event. A bootstrap that
// exits or gives up before that is an init failure, returned as the function error Lambda would answer.
func (in *instance) start(ctx context.Context) (*Result, error) {
	p := in.pool
	rt, err := newRuntimeAPI()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.spec.Bootstrap)
	cmd.Env = append(withoutVar(p.spec.Env, "AWS_LAMBDA_RUNTIME_API"), "AWS_LAMBDA_RUNTIME_API="+rt.Address())
	cmd.Stdout, cmd.Stderr = p.spec.Output, p.spec.Output
	// Own process group, so stopping kills what the bootstrap forked too; SIGKILL takes it down if this process
	// dies without cleaning up.
	proc, err := devstack.Start(cmd, syscall.SIGKILL)
	if err != nil {
		rt.close()
		return nil, err
	}
	in.proc, in.rt, in.startedAt = proc, rt, time.Now()
	p.mu.Lock()
	p.starts++
	p.mu.Unlock()
	timer := time.NewTimer(initLimit)
	defer timer.Stop()
	select {
	case <-rt.ready:
		return nil, nil
	case <-proc.Done():
		res := &Result{Payload: initErrorPayload(rt.initError(), "Runtime exited during init: "+exitStatus(proc)), FunctionError: "Unhandled"}
		in.kill()
		return res, nil
	case <-timer.C:
		in.kill()
		return &Result{Payload: errorPayload("Sandbox.Timedout", errInitTimeout.Error()), FunctionError: "Unhandled"}, nil
	case <-ctx.Done():
		in.kill()
		return nil, ctx.Err()
	}
}

func exitStatus(p *devstack.Proc) string {
	if st := p.Cmd.ProcessState; st != nil {
		return st.String()
	}
	return "exited"
}

// withoutVar is env without any KEY=... entry for key.
func withoutVar(env []string, key string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// invoke hands the event to the bootstrap and waits for its answer, its exit, the function's timeout or ctx. A
// timeout or a half-finished invocation replaces the process (Lambda resets the sandbox after a timeout).
func (in *instance) invoke(ctx context.Context, payload []byte) (Result, error) {
	p := in.pool
	begin := time.Now()
	inv := &invocation{id: requestID(), payload: payload, deadline: begin.Add(p.spec.Timeout),
		arn: functionARN(p.spec), done: make(chan Result, 1)}
	fmt.Fprintf(p.spec.Output, "START RequestId: %s Version: $LATEST\n", inv.id)
	in.rt.events <- inv // buffered 1, and empty: one invocation at a time per process
	timer := time.NewTimer(p.spec.Timeout)
	defer timer.Stop()
	var res Result
	select {
	case res = <-inv.done:
	case <-in.proc.Done():
		select {
		case res = <-inv.done: // answered, then exited (aws-lambda-go exits after reporting a panic)
		case <-in.rt.events:
			in.kill()
			return Result{}, errNotStarted
		default:
			res = Result{Payload: errorPayload("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", inv.id, exitStatus(in.proc))),
				FunctionError: "Unhandled"}
			in.kill()
		}
	case <-timer.C:
		in.report(inv.id, begin)
		in.kill()
		return Result{Payload: errorPayload("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, p.spec.Timeout.Seconds())),
			FunctionError: "Unhandled"}, nil
	case <-ctx.Done():
		in.kill()
		return Result{}, ctx.Err()
	}
	in.report(inv.id, begin)
	return res, nil
}

// report writes Lambda's END and REPORT lines: the invocation's duration, and the process's peak resident memory
// (VmHWM) where Lambda reports Max Memory Used.
func (in *instance) report(id string, begin time.Time) {
	d := time.Since(begin)
	mem := envValue(in.pool.spec.Env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
	fmt.Fprintf(in.pool.spec.Output, "END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %s MB\tMax Memory Used: %d MB\t\n",
		id, id, float64(d.Microseconds())/1000, (d+time.Millisecond-1)/time.Millisecond, mem, peakRSSMB(in.proc))
}

// peakRSSMB reads the process's peak resident set size from /proc (0 when it cannot).
func peakRSSMB(p *devstack.Proc) int {
	if p == nil || p.Cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return (kb + 1023) / 1024
		}
	}
	return 0
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// requestID is a random UUID-shaped id, as Lambda's request ids are.
func requestID() string {
	h := devstack.RandomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func functionARN(s Spec) string {
	region := envValue(s.Env, "AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	return "arn:aws:lambda:" + region + ":000000000000:function:" + s.Name
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

// kill stops the instance's process group (the bootstrap and what it forked), waits for it, and closes its
// Runtime API.
func (in *instance) kill() {
	if in.proc != nil {
		in.proc.Stop(syscall.SIGTERM, 2*time.Second)
		in.proc = nil
	}
	if in.rt != nil {
		in.rt.close()
		in.rt = nil
	}
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
				if in.rt != nil {
					in.rt.close()
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
