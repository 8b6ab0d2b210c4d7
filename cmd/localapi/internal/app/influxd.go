package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

// influxInstance is the InfluxDB the functions use: an external one, or influxd started here (local).
type influxInstance struct {
	URL, Org, Token string
	local           *devstack.Influxd
}

// LocalOrg is the organization created when onboarding the local influxd.
const LocalOrg = "iot-center"

// startInfluxd runs influxd with its data under dataDir (kept across runs), waits until healthy and onboards it on
// first run, saving the admin token in tokenFile (mode 0600).
func startInfluxd(ctx context.Context, bin, dataDir, addr, tokenFile, bucket string, out io.Writer) (*influxInstance, error) {
	local, err := devstack.StartInfluxd(ctx, bin, dataDir, addr, "warn", out)
	if err != nil {
		return nil, err
	}
	in := &influxInstance{URL: local.URL, Org: LocalOrg, local: local}
	if err := in.prepare(ctx, dataDir, tokenFile, bucket); err != nil {
		in.stop()
		return nil, err
	}
	return in, nil
}

// prepare onboards a fresh influxd, or takes the admin token saved when it was onboarded.
func (in *influxInstance) prepare(ctx context.Context, dataDir, tokenFile, bucket string) error {
	saved, err := readEnvFile(tokenFile)
	if err != nil {
		return err
	}
	allowed, err := devstack.SetupAllowed(ctx, in.URL)
	if err != nil {
		return err
	}
	switch {
	case allowed:
		in.Token = "local-admin-" + devstack.RandomHex(24)
		if _, err := devstack.Onboard(ctx, in.URL, in.Org, bucket, in.Token); err != nil {
			return err
		}
		return writeEnvFile(tokenFile, map[string]string{"INFLUX_TOKEN": in.Token, "INFLUX_ORG": in.Org})
	case saved["INFLUX_TOKEN"] != "":
		in.Token, in.Org = saved["INFLUX_TOKEN"], saved["INFLUX_ORG"]
		if in.Org == "" {
			in.Org = LocalOrg
		}
		return nil
	default:
		return fmt.Errorf("influxd in %s is already onboarded but %s has no INFLUX_TOKEN: delete the folder to start afresh", dataDir, tokenFile)
	}
}

// stop ends the local influxd (SIGTERM to its process group, SIGKILL after 10s); an external one is left alone.
func (in *influxInstance) stop() {
	if in != nil {
		in.local.Stop()
	}
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
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		b.WriteString(k + "=" + kv[k] + "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
