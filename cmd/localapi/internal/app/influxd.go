package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// influxInstance is the InfluxDB the functions use: an external one, or influxd started here.
type influxInstance struct {
	URL, Org, Token string
	cmd             *exec.Cmd
	done            chan struct{}
}

// LocalOrg is the organization created when onboarding the local influxd.
const LocalOrg = "iot-center"

// influxdBinary is $INFLUXD_BIN or the project's recipe (which builds influxd on first use).
func influxdBinary(ctx context.Context, root string, getenv func(string) string) (string, error) {
	if b := getenv("INFLUXD_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("INFLUXD_BIN=%s: %w", b, err)
		}
		return b, nil
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts/influxd/build-influxd.sh"), "path")
	cmd.Dir = root
	var errb bytes.Buffer
	cmd.Stderr = io.MultiWriter(&errb, os.Stderr)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding influxd (scripts/influxd/build-influxd.sh path): %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startInfluxd runs influxd with its data under dir (kept across runs), waits until healthy and onboards it on
// first run, saving the admin token in dir/../influx.env (mode 0600).
func startInfluxd(ctx context.Context, bin, dataDir, addr, tokenFile, bucket string, out io.Writer) (*influxInstance, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--reporting-disabled", "--http-bind-address="+addr,
		"--bolt-path="+filepath.Join(dataDir, "influxd.bolt"), "--engine-path="+filepath.Join(dataDir, "engine"),
		"--sqlite-path="+filepath.Join(dataDir, "influxd.sqlite"), "--log-level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting influxd: %w", err)
	}
	in := &influxInstance{URL: "http://" + addr, Org: LocalOrg, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(in.done) }()
	if err := waitHealthy(ctx, in.URL, in.done, 60*time.Second); err != nil {
		in.stop()
		return nil, err
	}
	saved, err := readEnvFile(tokenFile)
	if err != nil {
		in.stop()
		return nil, err
	}
	allowed, err := setupAllowed(ctx, in.URL)
	if err != nil {
		in.stop()
		return nil, err
	}
	switch {
	case allowed:
		in.Token = "local-admin-" + randomHex(24)
		if err := onboard(ctx, in.URL, in.Org, bucket, in.Token); err != nil {
			in.stop()
			return nil, err
		}
		if err := writeEnvFile(tokenFile, map[string]string{"INFLUX_TOKEN": in.Token, "INFLUX_ORG": in.Org}); err != nil {
			in.stop()
			return nil, err
		}
	case saved["INFLUX_TOKEN"] != "":
		in.Token, in.Org = saved["INFLUX_TOKEN"], saved["INFLUX_ORG"]
		if in.Org == "" {
			in.Org = LocalOrg
		}
	default:
		in.stop()
		return nil, fmt.Errorf("influxd in %s is already onboarded but %s has no INFLUX_TOKEN: delete the folder to start afresh", dataDir, tokenFile)
	}
	return in, nil
}

func waitHealthy(ctx context.Context, url string, done <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("influxd exited at start (is the port in use? see its output above)")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("influxd not healthy within %s at %s", limit, url)
}

func setupAllowed(ctx context.Context, url string) (bool, error) {
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

func onboard(ctx context.Context, url, org, bucket, token string) error {
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": "admin-" + randomHex(12), "org": org,
		"bucket": bucket, "token": token})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v2/setup", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("onboarding influxd answered %d", resp.StatusCode)
	}
	return nil
}

// stop ends influxd (SIGTERM to its process group, SIGKILL after 10s).
func (in *influxInstance) stop() {
	if in == nil || in.cmd == nil || in.cmd.Process == nil {
		return
	}
	pid := in.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-in.done
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readEnvFile reads KEY=VALUE lines; a missing file is empty.
func readEnvFile(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out, sc.Err()
}

// writeEnvFile writes KEY=VALUE lines readable by the owner only (they hold secrets).
func writeEnvFile(path string, kv map[string]string) error {
	var b strings.Builder
	b.WriteString("# written by cmd/localapi; secrets: keep private\n")
	for _, k := range sortedKeys(kv) {
		b.WriteString(k + "=" + kv[k] + "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
