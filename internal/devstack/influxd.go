package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InfluxdBinary returns $INFLUXD_BIN, or the path the project's recipe (scripts/influxd) prints, building influxd on
// first use (its progress goes to progress).
func InfluxdBinary(ctx context.Context, root string, getenv func(string) string, progress io.Writer) (string, error) {
	if b := getenv("INFLUXD_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("INFLUXD_BIN=%s: %w", b, err)
		}
		return b, nil
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts/influxd/build-influxd.sh"), "path")
	cmd.Dir = root
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if progress != nil {
		cmd.Stderr = io.MultiWriter(&errb, progress)
	}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding influxd (scripts/influxd/build-influxd.sh path): %v: %s", err, Tail(errb.String(), 2000))
	}
	return strings.TrimSpace(string(out)), nil
}

// Influxd is a running influxd with its state in a folder of its own.
type Influxd struct {
	URL  string
	Addr string // host:port
	Dir  string // bolt, engine and sqlite files

	bin, logLevel string
	out           io.Writer
	proc          *Proc
}

// StartInfluxd runs bin on addr with its data under dir (created if needed, kept afterwards) and waits (bounded)
// until it is healthy. Its output goes to out.
func StartInfluxd(ctx context.Context, bin, dir, addr, logLevel string, out io.Writer) (*Influxd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &Influxd{URL: "http://" + addr, Addr: addr, Dir: dir, bin: bin, logLevel: logLevel, out: out}
	return d, d.Launch(ctx)
}

// Launch starts the (stopped) server again on the same address and state.
func (d *Influxd) Launch(ctx context.Context) error {
	cmd := exec.Command(d.bin, "--reporting-disabled", "--http-bind-address="+d.Addr,
		"--bolt-path="+filepath.Join(d.Dir, "influxd.bolt"), "--engine-path="+filepath.Join(d.Dir, "engine"),
		"--sqlite-path="+filepath.Join(d.Dir, "influxd.sqlite"), "--log-level="+d.logLevel)
	cmd.Stdout, cmd.Stderr = d.out, d.out
	p, err := Start(cmd, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("starting influxd: %w", err)
	}
	d.proc = p
	if err := WaitHealthy(ctx, d.URL+"/health", p.Done(), 60*time.Second); err != nil {
		d.Stop()
		if errors.Is(err, errExited) {
			return errors.New("influxd exited at start (is the port in use? see its output)")
		}
		return fmt.Errorf("influxd: %w", err)
	}
	return nil
}

// Stop ends influxd (SIGTERM to its process group, SIGKILL after 10 s); its data stays.
func (d *Influxd) Stop() {
	if d == nil || d.proc == nil {
		return
	}
	d.proc.Stop(syscall.SIGTERM, 10*time.Second)
	d.proc = nil
}

// Running reports whether this value started the process and has not stopped it.
func (d *Influxd) Running() bool { return d != nil && d.proc != nil }

// CPUTime is the CPU time (user + system) the running influxd has used so far, from /proc (Linux): benchmarks
// compare the InfluxDB work two ways of writing cost, which other load on the machine does not change.
func (d *Influxd) CPUTime() (time.Duration, error) {
	if !d.Running() {
		return 0, errors.New("influxd is not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.proc.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// fields after the command's closing parenthesis: state is the 3rd field of the line, utime and stime the 14th
	// and 15th, in clock ticks (USER_HZ, 100 on Linux)
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, errors.New("unexpected /proc stat line")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat times")
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// SetupAllowed reports whether the server at url still accepts onboarding (a fresh server).
func SetupAllowed(ctx context.Context, url string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v2/setup", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var out struct {
		Allowed bool `json:"allowed"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil {
		return false, fmt.Errorf("GET /api/v2/setup: %w", err)
	}
	return out.Allowed, nil
}

// Onboard creates the first user, org, bucket and the given admin token; it returns the org's id.
func Onboard(ctx context.Context, url, org, bucket, token string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": "admin-" + RandomHex(12), "org": org,
		"bucket": bucket, "token": token})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v2/setup", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("onboarding influxd answered %d", resp.StatusCode)
	}
	var out struct {
		Org struct{ ID string } `json:"org"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("onboarding influxd: %w", err)
	}
	return out.Org.ID, nil
}
