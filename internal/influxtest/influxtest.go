// Package influxtest starts a real InfluxDB OSS 2.x server (influxd) on a free loopback port for tests: one shared
// server per test binary (Shared), or a dedicated one a test may stop and restart (Start). Nothing is mocked.
//
// If IOT_TEST_INFLUX_URL and IOT_TEST_INFLUX_TOKEN (and IOT_TEST_INFLUX_ORG) are set, Shared uses that server
// instead and only creates and deletes buckets and authorizations of its own.
package influxtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Server is a running InfluxDB with an onboarded org and admin token.
type Server struct {
	URL    string
	Org    string
	OrgID  string
	Token  string
	Bucket string // the bucket created at onboarding

	external bool
	port     int
	dir      string
	bin      string
	proc     *devstack.Influxd
	mu       sync.Mutex
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Main runs the tests and stops the shared server (if one was started) afterwards, even when tests failed.
// Use it from TestMain: os.Exit(influxtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	stopDynamo()
	if shared != nil && !shared.external {
		shared.stop()
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// Shared returns the test binary's shared server, starting it on first use. A server that cannot start fails the
// test: tests never skip for lack of InfluxDB (make test builds it).
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		if u, tok := os.Getenv("IOT_TEST_INFLUX_URL"), os.Getenv("IOT_TEST_INFLUX_TOKEN"); u != "" && tok != "" {
			shared, sharedErr = external(u, tok, os.Getenv("IOT_TEST_INFLUX_ORG"))
			return
		}
		shared, sharedErr = start()
	})
	if sharedErr != nil {
		t.Fatalf("influxtest: starting InfluxDB: %v", sharedErr)
	}
	return shared
}

// Start starts a dedicated server for one test (stopped and removed at the end of the test). Tests that stop or
// restart InfluxDB use it, so they never disturb the shared one.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatalf("influxtest: starting InfluxDB: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		_ = os.RemoveAll(s.dir)
	})
	return s
}

// Client returns a new admin client for the server, closed at the end of the test.
func (s *Server) Client(t testing.TB) *influx.Client {
	t.Helper()
	c := influx.New(s.URL, s.Token, s.Org, influx.Options{})
	t.Cleanup(c.Close)
	return c
}

// NewBucket creates a bucket with a unique name (prefix + random suffix), deleted at the end of the test.
func (s *Server) NewBucket(t testing.TB, prefix string) string {
	t.Helper()
	name := prefix + "_" + RandomID(6)
	c := influx.New(s.URL, s.Token, s.Org, influx.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := c.EnsureBucket(ctx, name, 0); err != nil {
		t.Fatalf("influxtest: creating bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.DeleteBucket(ctx, name)
		c.Close()
	})
	return name
}

// Config is the functions' configuration for this server: its admin token, the given data bucket, and the
// deployed defaults for the rest. Tests set what they exercise on top.
func (s *Server) Config(bucket string) config.Config {
	return config.Config{InfluxURL: s.URL, InfluxPublicURL: s.URL, Org: s.Org, Token: config.Secret(s.Token),
		Bucket: bucket, DefaultLat: config.DefaultLat, DefaultLon: config.DefaultLon,
		MeasurementInterval: 60, ConfigurationRefresh: 3600, MaxDevices: 1000}
}

// RevokeAtCleanup deletes, at the end of the test, every authorization described as desc (a device's is
// registry.Description(id)), so tests on the shared server leave no tokens behind.
func (s *Server) RevokeAtCleanup(t testing.TB, desc string) {
	t.Cleanup(func() {
		c := influx.New(s.URL, s.Token, s.Org, influx.Options{})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		as, _ := c.FindAuthorizations(ctx, desc)
		for _, a := range as {
			_ = c.DeleteAuthorization(ctx, a.ID)
		}
	})
}

// RandomID returns n random bytes as hex, for unique names.
func RandomID(n int) string { return devstack.RandomHex(n) }

// Stop stops a dedicated server (its data stays, so Restart brings it back with the same state).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.external {
		t.Fatal("influxtest: cannot stop an external server")
	}
	s.stop()
}

// Restart starts a stopped dedicated server again on the same port and state folder.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	if err := s.launch(); err != nil {
		t.Fatalf("influxtest: restarting InfluxDB: %v", err)
	}
}

// Port is the server's loopback port.
func (s *Server) Port() int { return s.port }

// Binary returns the path of influxd: $INFLUXD_BIN, or the project's recipe (scripts/influxd), which builds it on
// first use and prints the cached path afterwards.
func Binary() (string, error) {
	root, err := devstack.ModuleRoot()
	if err != nil {
		return "", err
	}
	return devstack.InfluxdBinary(context.Background(), root, os.Getenv, nil)
}

func start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "influxtest-")
	if err != nil {
		return nil, err
	}
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, dir: dir, bin: bin,
		Org: "iot-test", Token: "test-admin-token-" + RandomID(16), Bucket: "init"}
	if err := s.launch(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if s.OrgID, err = devstack.Onboard(ctx, s.URL, s.Org, s.Bucket, s.Token); err != nil {
		s.stop()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// launch starts influxd on the server's port and state folder, its output in influxd.log there.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(s.dir, "influxd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d, err := devstack.StartInfluxd(ctx, s.bin, s.dir, fmt.Sprintf("127.0.0.1:%d", s.port), "error", logf)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "influxd.log"))
		return fmt.Errorf("%v: %s", err, devstack.Tail(string(log), 2000))
	}
	s.proc = d
	return nil
}

// CPUTime is the CPU time the test binary's own influxd has used so far; an error for an external server.
func (s *Server) CPUTime() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.external || s.proc == nil {
		return 0, errors.New("influxtest: the server's process is not this test binary's")
	}
	return s.proc.CPUTime()
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.Stop()
	s.proc = nil
}

func external(url, token, org string) (*Server, error) {
	if org == "" {
		return nil, fmt.Errorf("IOT_TEST_INFLUX_ORG is required with IOT_TEST_INFLUX_URL")
	}
	s := &Server{URL: strings.TrimRight(url, "/"), Token: token, Org: org, external: true}
	c := influx.New(s.URL, token, org, influx.Options{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := c.OrgID(ctx)
	if err != nil {
		return nil, err
	}
	s.OrgID = id
	s.Bucket = "iot_test_" + RandomID(4)
	if _, _, err := c.EnsureBucket(ctx, s.Bucket, time.Hour); err != nil {
		return nil, err
	}
	return s, nil
}
