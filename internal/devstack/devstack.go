// Package devstack starts and stops the local stack that `make run` (cmd/localapi) and the tests share: free
// loopback ports, child processes in their own process group, influxd, moto's server (the stand-in for DynamoDB,
// SQS and SSM), the state table from the template, and the local API as a subprocess.
package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ModuleRoot is the folder holding go.mod at or above the working directory (a test's package folder, or wherever
// `make run` starts).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for i := 0; i < 32; i++ {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.mod above the working directory")
}

// handedOut holds the ports FreePort gave this process in the last minute: the kernel may offer a closed port again
// at once, and two emulators starting together must not be told the same one. (A minute is far longer than a
// start; forgetting keeps a long-running local API from using up the range.)
var handedOut = struct {
	sync.Mutex
	at map[int]time.Time
}{at: map[int]time.Time{}}

// FreePort asks the kernel for a free loopback port that this process was not given in the last minute.
func FreePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	now := time.Now()
	for p, at := range handedOut.at {
		if now.Sub(at) > time.Minute {
			delete(handedOut.at, p)
		}
	}
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, recent := handedOut.at[port]; !recent {
			handedOut.at[port] = now
			return port, nil
		}
	}
	return 0, errors.New("testenv: every loopback port offered was handed out in the last minute")
}

// RandomHex returns n random bytes as hex, for unique names and generated keys.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Proc is a child process started in its own process group, so stopping it also stops what it forked (an
// emulator's bootstrap). The kernel sends it deathSig if this process dies first: no child outlives its parent.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd in a new process group (deathSig is sent to it if this process dies).
func Start(cmd *exec.Cmd, deathSig syscall.Signal) (*Proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop sends sig to the process group, waits up to grace for the process to exit, then kills the group; it
// returns false when the process had to be killed. Whatever is left in the group afterwards is killed too.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) bool {
	if p == nil || p.Cmd.Process == nil {
		return true
	}
	pid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pid, sig)
	clean := true
	select {
	case <-p.done:
	case <-time.After(grace):
		clean = false
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return clean
}

// What a wait gives up with: the process it waits for exited, or the time ran out.
var (
	errExited   = errors.New("the process exited at start")
	errNotReady = errors.New("not ready in time")
)

// waitReady calls ready every step until it reports true, for at most limit. It gives up early when done closes
// (the process that should get ready exited: checked before each call, so a stranger answering on a port the
// process could not take is not mistaken for it) or ctx ends.
func waitReady(ctx context.Context, done <-chan struct{}, limit, step time.Duration, ready func() bool) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-done:
			return errExited
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return errNotReady
		}
		select {
		case <-done:
		case <-ctx.Done():
		case <-time.After(step):
		}
	}
}

// Kill sends SIGKILL to the process group at once, without waiting: what a crash or the Lambda service's hard stop
// does to a process.
func (p *Proc) Kill() error { return syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL) }

// WaitListen waits (at most limit) until addr accepts TCP connections; it gives up early when done closes (the
// process that should listen exited) or ctx ends.
func WaitListen(ctx context.Context, addr string, done <-chan struct{}, limit time.Duration) error {
	err := waitReady(ctx, done, limit, 10*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if errors.Is(err, errNotReady) {
		return fmt.Errorf("nothing listens on %s after %s", addr, limit)
	}
	return err
}

// WaitHealthy waits (at most limit) until GET url answers 200; it gives up early when done closes (the process
// that should answer exited) or ctx ends.
func WaitHealthy(ctx context.Context, url string, done <-chan struct{}, limit time.Duration) error {
	err := waitReady(ctx, done, limit, 50*time.Millisecond, func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if errors.Is(err, errNotReady) {
		return fmt.Errorf("%s did not answer 200 within %s", url, limit)
	}
	return err
}

// RIE locates the Lambda Runtime Interface Emulator: $RIE_BIN, then <root>/bin/aws-lambda-rie (built by
// `make tools`), then the go.mod tool's cached binary (`go tool -n aws-lambda-rie`, which builds it when needed).
func RIE(root string, getenv func(string) string) (string, error) {
	if b := getenv("RIE_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("RIE_BIN=%s: %w", b, err)
		}
		return filepath.Abs(b)
	}
	if b := filepath.Join(root, "bin", "aws-lambda-rie"); fileExists(b) {
		return b, nil
	}
	cmd := exec.Command("go", "tool", "-n", "aws-lambda-rie")
	cmd.Dir = root
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding the emulator (run `make tools`): go tool -n aws-lambda-rie: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	b := strings.TrimSpace(string(out))
	if !fileExists(b) {
		return "", fmt.Errorf("go tool -n aws-lambda-rie printed %q, which does not exist (run `make tools`)", b)
	}
	return b, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Tail returns at most the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
