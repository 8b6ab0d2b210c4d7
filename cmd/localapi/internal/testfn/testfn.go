// Package testfn builds the test-only echo function (cmd/localapi/testdata/echo) for the local API's tests.
package testfn

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

// Root is the repository root (devstack.ModuleRoot; tests run inside the module).
func Root() string {
	root, err := devstack.ModuleRoot()
	if err != nil {
		panic(err) // test support only: a test binary outside its module cannot build the echo function anyway
	}
	return root
}

// BuildEcho builds the echo bootstrap for the host into dir and returns its path.
func BuildEcho(dir string) (string, error) {
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, "./cmd/localapi/testdata/echo")
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the echo function: %v\n%s", err, b)
	}
	return out, nil
}

// Main builds the echo function into a temporary folder, setting *echo, then runs the tests (use it from TestMain:
// os.Exit(testfn.Main(m, &echoBin))).
func Main(m *testing.M, echo *string) int {
	dir, err := os.MkdirTemp("", "localapi-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *echo, err = BuildEcho(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
