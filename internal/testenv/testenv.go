// Package testenv is the one home of the plumbing that tests and `make run` (cmd/localapi) share: the module root,
// free loopback ports, child processes in their own process group, the Lambda Runtime Interface Emulator, a real
// influxd (influxd.go) and the local API as a subprocess (localapi.go). It lives in internal/: nothing outside this
// module can import it.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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

// WaitListen waits (at most limit) until addr accepts TCP connections; it gives up early when done closes (the
// process that should listen exited) or ctx ends.
func WaitListen(ctx context.Context, addr string, done <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s", addr, limit)
		}
		select {
		case <-done:
			return errors.New("the process exited at start")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
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
