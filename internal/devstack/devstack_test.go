package devstack

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/iot-center/iot-center-serverless") {
		t.Errorf("ModuleRoot() = %s: go.mod %q, %v; want this module's go.mod", root, b, err)
	}
}

func TestFreePortListens(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("FreePort() = %d, not free: %v", p, err)
	}
	defer l.Close()
	if err := WaitListen(context.Background(), l.Addr().String(), nil, 5*time.Second); err != nil {
		t.Errorf("WaitListen on a listening port: %v", err)
	}
}

// TestFreePortNeverRepeats: concurrent callers (emulators starting together) never get the same port, though the
// kernel may offer a just-closed one again.
func TestFreePortNeverRepeats(t *testing.T) {
	const n = 300
	ports := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := FreePort()
			if err != nil {
				t.Error(err)
			}
			ports[i] = p
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestStopKillsTheGroup: a shell that ignores SIGTERM and has a child; Stop kills both after the grace period.
func TestStopKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	cmd := exec.Command("sh", "-c", `trap '' TERM; sleep 60 & echo $! > `+pidFile+`; wait`)
	p, err := Start(cmd, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0; {
		b, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if time.Now().After(deadline) {
			t.Fatal("the child's pid was not written within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if clean := p.Stop(syscall.SIGTERM, 200*time.Millisecond); clean {
		t.Error("Stop() = true for a process that ignores SIGTERM, want false (killed)")
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done() not closed after Stop")
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(child, 0) == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the group still alive after Stop", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWaitListenGivesUpWhenTheProcessExits(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	close(done)
	start := time.Now()
	if err := WaitListen(context.Background(), "127.0.0.1:"+strconv.Itoa(p), done, time.Minute); err == nil {
		t.Fatal("WaitListen on a closed port = nil, want an error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("WaitListen took %s after the process exited, want an early return", d)
	}
}

func TestRIEFromEnv(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rie")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"RIE_BIN": bin}
	if got, err := RIE(t.TempDir(), func(k string) string { return env[k] }); err != nil || got != bin {
		t.Errorf("RIE() = %q, %v; want %q", got, err, bin)
	}
	env["RIE_BIN"] = bin + ".missing"
	if _, err := RIE(t.TempDir(), func(k string) string { return env[k] }); err == nil {
		t.Error("RIE() with a missing RIE_BIN = nil error, want an error")
	}
}
