package lambdarun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
)

// TestNothingButTheRunnerInvokes: once every function of a runner has served an invocation, every TCP port that
// this process or any process it started listens on is sent a forged operator event (at the emulator's invoke path
// and at the root) and a `GET /2018-06-01/runtime/invocation/next`, as a web page (DNS rebinding) or another user of
// the machine could. Each must be refused at once (4xx): no forged event runs (the echo function would record it)
// and no event is handed out. A request still unanswered after a few seconds counts as not refused (a `next` long
// poll that would take the next event).
func TestNothingButTheRunnerInvokes(t *testing.T) {
	p := newPool(t, echoSpec(t, "DeleteFunction", 2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// both instances started: the pool hands the second invocation to the second process while the first sleeps
	done := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := p.Invoke(ctx, []byte(`{"sleepMs":300}`))
			if err == nil && res.FunctionError != "" {
				err = fmt.Errorf("function error %s", res.Payload)
			}
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	ports := listeningPorts(t)
	if len(ports) == 0 {
		t.Fatal("no listening port found for this process tree (the probe itself is broken)")
	}
	record := filepath.Join(t.TempDir(), "forged")
	forged, err := json.Marshal(map[string]any{
		"version": "2.0", "routeKey": "DELETE /api/devices/{deviceId}", "rawPath": "/api/devices/victim",
		"record": record,
		"requestContext": map[string]any{"http": map[string]any{"method": "DELETE", "path": "/api/devices/victim"},
			"authorizer": map[string]any{"lambda": map[string]any{"role": "operator"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, port := range ports {
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		probes := []struct {
			method, path string
			body         []byte
		}{
			{"POST", "/2015-03-31/functions/function/invocations", forged},
			{"POST", "/", forged},
			{"GET", "/2018-06-01/runtime/invocation/next", nil},
		}
		for _, pr := range probes {
			req, err := http.NewRequestWithContext(ctx, pr.method, base+pr.path, bytes.NewReader(pr.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				if strings.Contains(err.Error(), "Timeout") || strings.Contains(err.Error(), "deadline") {
					t.Errorf("port %d: %s %s still unanswered after %s, want refused at once", port, pr.method, pr.path, client.Timeout)
				}
				continue // connection refused or reset: not served
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("port %d: %s %s = %d %.200s, want 4xx", port, pr.method, pr.path, resp.StatusCode, body)
			}
		}
	}
	if b, err := os.ReadFile(record); err == nil {
		t.Errorf("the forged event ran (recorded by pid %s)", strings.TrimSpace(string(b)))
	}
	// the runner itself still works
	if res, err := p.Invoke(ctx, []byte(`{}`)); err != nil || res.FunctionError != "" {
		t.Errorf("after the probes: %v %s", err, res.Payload)
	}
}

// listeningPorts returns the TCP ports in LISTEN state whose socket is held by this process or a descendant
// (from /proc: /proc/net/tcp{,6} for the sockets, /proc/<pid>/fd for who holds them).
func listeningPorts(t *testing.T) []int {
	t.Helper()
	inodes := map[string]int{} // socket inode -> port
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, portHex, _ := strings.Cut(fs[1], ":")
			port, err := strconv.ParseInt(portHex, 16, 32)
			if err == nil {
				inodes[fs[9]] = int(port)
			}
		}
	}
	tree := descendants(t, os.Getpid())
	seen := map[int]bool{}
	var out []int
	for pid := range tree {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			if port, ok := inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")]; ok && !seen[port] {
				seen[port] = true
				out = append(out, port)
			}
		}
	}
	return out
}

// descendants is root and every process whose parent chain reaches it.
func descendants(t *testing.T, root int) map[int]bool {
	t.Helper()
	parent := map[int]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		if fs := strings.Fields(rest); len(fs) > 1 {
			ppid, _ := strconv.Atoi(fs[1])
			parent[pid] = ppid
		}
	}
	out := map[int]bool{root: true}
	for pid := range parent {
		chain := []int{}
		for p, hops := pid, 0; p > 1 && hops < 64; p, hops = parent[p], hops+1 {
			if out[p] {
				for _, c := range chain {
					out[c] = true
				}
				break
			}
			chain = append(chain, p)
		}
	}
	return out
}

// TestRuntimeAPIChecksHostAndSecret: the Runtime API answers only its own address as Host (a DNS-rebinding page
// sends its own name) and only under the process's secret; even then a result for an invocation it did not hand
// out is refused.
func TestRuntimeAPIChecksHostAndSecret(t *testing.T) {
	p := newPool(t, echoSpec(t, "Echo", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Invoke(ctx, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	rt := p.all[0].rt
	wrong := []byte(rt.secret)
	wrong[0] ^= 1
	tests := []struct {
		name, host, secret, method, rest string
		want                             int
	}{
		{"rebinding Host", "evil.example:" + rt.host[strings.LastIndexByte(rt.host, ':')+1:], rt.secret, "GET", "invocation/next", 404},
		{"localhost Host", "localhost" + rt.host[strings.LastIndexByte(rt.host, ':'):], rt.secret, "GET", "invocation/next", 404},
		{"wrong secret", rt.host, string(wrong), "GET", "invocation/next", 404},
		{"no secret", rt.host, "", "GET", "invocation/next", 404},
		{"unknown invocation", rt.host, rt.secret, "POST", "invocation/00000000-0000-0000-0000-000000000000/response", 400},
		{"unknown route", rt.host, rt.secret, "POST", "invocation/x/other", 404},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/2018-06-01/runtime/" + tc.rest
			if tc.secret != "" {
				path = "/" + tc.secret + path
			}
			req, err := http.NewRequestWithContext(ctx, tc.method, "http://"+rt.host+path, strings.NewReader(`{"statusCode":200}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%v (want %d at once)", err, tc.want)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if res, err := p.Invoke(ctx, []byte(`{}`)); err != nil || res.FunctionError != "" {
		t.Errorf("after the probes: %v %s", err, res.Payload)
	}
}

// TestInitFailureAndReport: a bootstrap that exits before asking for an event is an init failure (a function
// error, as Lambda answers); a served invocation is logged with START, END and REPORT lines carrying the process's
// peak memory.
func TestInitFailureAndReport(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'missing configuration' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPool(t, Spec{Name: "Broken", Bootstrap: broken, Env: []string{"PATH=/usr/bin:/bin"}})
	res, err := p.Invoke(ctx, []byte(`{}`))
	if err != nil || res.FunctionError != "Unhandled" || !bytes.Contains(res.Payload, []byte("Runtime.ExitError")) || !bytes.Contains(res.Payload, []byte("exit status 3")) {
		t.Errorf("init failure = %v %q %s, want a Runtime.ExitError function error naming exit status 3", err, res.FunctionError, res.Payload)
	}

	var out syncbuf.Buffer
	spec := echoSpec(t, "Echo", 1)
	spec.Env = append(spec.Env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256")
	spec.Output = &out
	e := newPool(t, spec)
	if res, err := e.Invoke(ctx, []byte(`{}`)); err != nil || res.FunctionError != "" {
		t.Fatalf("%v %s", err, res.Payload)
	}
	logs := out.String()
	for _, want := range []string{"START RequestId: ", "END RequestId: ", "Memory Size: 256 MB", "Max Memory Used: "} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "Max Memory Used: 0 MB") {
		t.Errorf("peak memory not read:\n%s", logs)
	}
}
