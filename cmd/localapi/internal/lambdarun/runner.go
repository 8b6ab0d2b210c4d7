package lambdarun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

// Runner holds one pool per function.
type Runner struct {
	pools map[string]*Pool
}

// NewRunner builds a pool for each spec.
func NewRunner(specs []Spec) *Runner {
	r := &Runner{pools: map[string]*Pool{}}
	for _, s := range specs {
		r.pools[s.Name] = NewPool(s)
	}
	return r
}

// Has reports whether the function exists.
func (r *Runner) Has(name string) bool { _, ok := r.pools[name]; return ok }

// Pool returns a function's pool (nil when unknown).
func (r *Runner) Pool(name string) *Pool { return r.pools[name] }

// Invoke runs one invocation of the named function.
func (r *Runner) Invoke(ctx context.Context, name string, payload []byte) (Result, error) {
	p, ok := r.pools[name]
	if !ok {
		return Result{}, fmt.Errorf("%w: no function %q", ErrUnavailable, name)
	}
	return p.Invoke(ctx, payload)
}

// Close stops every bootstrap process.
func (r *Runner) Close(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range r.pools {
		wg.Add(1)
		go func() { defer wg.Done(); p.Close(ctx) }()
	}
	wg.Wait()
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// BuildResult is one function's build outcome.
type BuildResult struct {
	Bootstrap string // path when the build succeeded
	Err       error
	Output    string // make's combined output (tail kept on failure)
}

// Build runs `make build-<id> LAMBDA_GOARCH=<goarch> ARTIFACTS_DIR=<outDir>/<id>` for each id in root, at most parallel at
// a time. A failed build is reported in its result; the others are unaffected.
func Build(ctx context.Context, root, outDir, goarch string, ids []string, parallel int) map[string]BuildResult {
	if parallel < 1 {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var wg sync.WaitGroup
	res := map[string]BuildResult{}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	for _, id := range sorted {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				mu.Lock()
				res[id] = BuildResult{Err: ctx.Err()}
				mu.Unlock()
				return
			}
			defer func() { <-sem }()
			r := buildOne(ctx, root, outDir, goarch, id)
			if r.Err != nil && ctx.Err() == nil {
				// Once more: builds running beside others' (shared Go build cache, npm) fail transiently at times.
				r = buildOne(ctx, root, outDir, goarch, id)
			}
			mu.Lock()
			res[id] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

func buildOne(ctx context.Context, root, outDir, goarch, id string) BuildResult {
	dir, err := filepath.Abs(filepath.Join(outDir, id))
	if err != nil {
		return BuildResult{Err: err}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return BuildResult{Err: err}
	}
	boot := filepath.Join(dir, "bootstrap")
	_ = os.Remove(boot) // a stale bootstrap must not survive a failed build
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build-"+id, "LAMBDA_GOARCH="+goarch, "ARTIFACTS_DIR="+dir)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	r := BuildResult{Output: devstack.Tail(out.String(), 4000)}
	if err != nil {
		r.Err = fmt.Errorf("make build-%s: %v", id, err)
		return r
	}
	if !fileExists(boot) {
		r.Err = fmt.Errorf("make build-%s succeeded but wrote no %s", id, boot)
		return r
	}
	r.Bootstrap = boot
	return r
}

// PrefixWriter writes each complete line to w as "[name] line"; writers sharing mu never interleave lines.
type PrefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix []byte
	buf    []byte
}

// NewPrefixWriter returns a writer prefixing lines with "[name] ".
func NewPrefixWriter(w io.Writer, mu *sync.Mutex, name string) *PrefixWriter {
	return &PrefixWriter{w: w, mu: mu, prefix: []byte("[" + name + "] ")}
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		line := append(append([]byte(nil), p.prefix...), p.buf[:i+1]...)
		p.buf = p.buf[i+1:]
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
	}
	// An unterminated line is flushed once it gets long, so a runaway writer cannot grow the buffer forever.
	if len(p.buf) > 64<<10 {
		line := append(append(append([]byte(nil), p.prefix...), p.buf...), '\n')
		p.buf = p.buf[:0]
		_, _ = p.w.Write(line)
	}
	return len(b), nil
}
