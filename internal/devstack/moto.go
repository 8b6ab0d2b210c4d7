package devstack

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Moto is moto's server (python3 -m moto.server), the stand-in for the AWS services that cannot run here (SSM
// for the tests, SQS for the local API and the backfill tests).
type Moto struct {
	URL  string
	proc *Proc
}

// LaunchMoto runs moto's server on a free loopback port, its output going to out, and waits (at most 60 s, and
// while ctx lasts) until it listens.
func LaunchMoto(ctx context.Context, out io.Writer) (*Moto, error) {
	return launchMoto(ctx, out, "-m", "moto.server", "-H", "127.0.0.1", "-p")
}

// dynamoStandin is moto's server applying one request at a time, its Query reading only the partition asked for.
//
//go:embed dynamodb_standin.py
var dynamoStandin string

// LaunchDynamoDB is LaunchMoto for the DynamoDB stand-in (dynamodb_standin.py says how it differs from moto's).
func LaunchDynamoDB(ctx context.Context, out io.Writer) (*Moto, error) {
	return launchMoto(ctx, out, "-c", dynamoStandin)
}

// launchMoto runs python3 with args and the port last.
func launchMoto(ctx context.Context, out io.Writer, args ...string) (*Moto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("python3", append(args, strconv.Itoa(port))...)
	// not the test's AWS_* variables: an empty AWS_PROFILE (StartMoto sets it) makes the server's botocore fail
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := Start(cmd, syscall.SIGKILL)
	if err != nil {
		return nil, fmt.Errorf("starting moto (python3 -m moto.server): %w", err)
	}
	m := &Moto{URL: "http://" + addr, proc: p}
	if err := WaitListen(ctx, addr, p.Done(), 60*time.Second); err != nil {
		m.Stop()
		if errors.Is(err, errExited) {
			return nil, errors.New("moto exited at start (is moto installed? pip install 'moto[server]')")
		}
		return nil, fmt.Errorf("moto: %w", err)
	}
	return m, nil
}

// Stop ends the server: SIGTERM to its process group, SIGKILL after 5 s.
func (m *Moto) Stop() {
	if m != nil {
		m.proc.Stop(syscall.SIGTERM, 5*time.Second)
	}
}
