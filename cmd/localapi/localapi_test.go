package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/lambdarun"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/testfn"
)

// makefileTargets returns build-<LogicalId> -> package path of its go build, and the FUNCTIONS list.
func makefileTargets(t testing.TB) (map[string]string, []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(testfn.Root(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	targets := map[string]string{}
	var functions []string
	target := regexp.MustCompile(`^build-([A-Za-z0-9]+):`)
	pkg := regexp.MustCompile(`\$\(GO_BUILD\)\s+(\./functions/\S+)`)
	current, inFunctions := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "FUNCTIONS :=") || inFunctions {
			body := strings.TrimPrefix(line, "FUNCTIONS :=")
			inFunctions = strings.HasSuffix(body, "\\")
			functions = append(functions, strings.Fields(strings.TrimSuffix(body, "\\"))...)
			continue
		}
		if m := target.FindStringSubmatch(line); m != nil {
			current = m[1]
			targets[current] = ""
			continue
		}
		if m := pkg.FindStringSubmatch(line); m != nil && current != "" && strings.HasPrefix(line, "\t") {
			targets[current] = m[1]
		}
		if !strings.HasPrefix(line, "\t") {
			current = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return targets, functions
}

func loadTemplate(t testing.TB) *samtpl.Template {
	t.Helper()
	tpl, err := samtpl.Load(filepath.Join(testfn.Root(), "template.yaml"), map[string]string{"InfluxUrl": "http://127.0.0.1:1", "InfluxOrg": "o"})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestMakefileTargetsMatchTemplate: SAM's `BuildMethod: makefile` calls build-<LogicalId>, so the two lists must
// agree; each target builds functions/<lowercase id without "Function">; every function folder is reachable.
func TestMakefileTargetsMatchTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	targets, functions := makefileTargets(t)
	ids := tpl.IDs()
	for _, id := range ids {
		pkg, ok := targets[id]
		if !ok {
			t.Errorf("template function %s has no build-%s target in the Makefile", id, id)
			continue
		}
		if want := "./functions/" + strings.ToLower(strings.TrimSuffix(id, "Function")); pkg != want {
			t.Errorf("build-%s builds %q, want %q", id, pkg, want)
		}
	}
	for target := range targets {
		if tpl.Functions[target] == nil {
			t.Errorf("Makefile target build-%s matches no function in template.yaml", target)
		}
	}
	sort.Strings(functions)
	if strings.Join(functions, " ") != strings.Join(ids, " ") {
		t.Errorf("Makefile FUNCTIONS = %v, template functions = %v", functions, ids)
	}

	routed := map[string]bool{}
	for _, r := range tpl.Routes {
		routed[r.Function] = true
	}
	dirs, err := os.ReadDir(filepath.Join(testfn.Root(), "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		var fn *samtpl.Function
		for _, id := range ids {
			if strings.ToLower(strings.TrimSuffix(id, "Function")) == d.Name() {
				fn = tpl.Functions[id]
			}
		}
		if fn == nil {
			t.Errorf("functions/%s has no AWS::Serverless::Function in template.yaml", d.Name())
			continue
		}
		if !routed[fn.LogicalID] && len(fn.InvokedBy) == 0 {
			t.Errorf("functions/%s (%s) has neither a route nor an invoker", d.Name(), fn.LogicalID)
		}
	}
}

func TestPairs(t *testing.T) {
	got, err := pairs("A=1 B=x,C=")
	if err != nil || got["A"] != "1" || got["B"] != "x" || got["C"] != "" || len(got) != 3 {
		t.Errorf("pairs = %v %v", got, err)
	}
	if _, err := pairs("novalue"); err == nil {
		t.Error("pairs accepted a field without =")
	}
}

// BenchmarkColdStart reports, per function, the cold start under the local runner (bootstrap process start to the
// first response, host build) and the init share of it (cold minus a warm invocation), plus the size of the arm64
// bootstrap built with the exact Makefile target. The goals (initGoalMs, bootstrapGoalMB) are reported beside the
// figures; a bootstrap over the goal fails (its size does not vary between runs, the init time does).
func BenchmarkColdStart(b *testing.B) {
	tpl := loadTemplate(b)
	root := testfn.Root()
	dir := b.TempDir()
	ctx := context.Background()
	ids := tpl.IDs()
	host := lambdarun.Build(ctx, root, filepath.Join(dir, runtime.GOARCH), runtime.GOARCH, ids, 2)
	arm := lambdarun.Build(ctx, root, filepath.Join(dir, "arm64"), "arm64", ids, 2)
	// The runner's own share: the same measurement with the test-only echo function (a bare aws-lambda-go
	// bootstrap); a function's init beyond this figure is its own.
	echo, err := testfn.BuildEcho(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("RunnerBaselineEcho", func(b *testing.B) {
		var colds, inits []float64
		for i := 0; i < b.N; i++ {
			for s := 0; s < 5; s++ {
				cold, warm := coldStart(b, "Echo", echo, []string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_TIMEOUT=10"}, []byte(`{}`))
				colds = append(colds, ms(cold))
				inits = append(inits, ms(cold-warm))
			}
		}
		b.ReportMetric(median(colds), "ms/cold_start_median")
		b.ReportMetric(median(inits), "ms/init_median")
	})
	for _, id := range ids {
		b.Run(id, func(b *testing.B) {
			if r := arm[id]; r.Err != nil {
				b.Fatalf("arm64 build: %v\n%s", r.Err, r.Output)
			}
			if r := host[id]; r.Err != nil {
				b.Fatalf("host build: %v\n%s", r.Err, r.Output)
			}
			st, err := os.Stat(arm[id].Bootstrap)
			if err != nil {
				b.Fatal(err)
			}
			f := tpl.Functions[id]
			env := []string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME=" + id, "AWS_LAMBDA_FUNCTION_TIMEOUT=10",
				"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
				"INFLUX_TOKEN=bench-token", "IOT_OPERATOR_KEY=bench-operator", "IOT_DEVICE_KEY=bench-device"}
			for k, v := range f.Env {
				env = append(env, k+"="+v)
			}
			// A request the function answers without I/O (an unrouted path, or an empty event), so the figures are
			// the runner's and the bootstrap's start-up, not InfluxDB round trips.
			payload := benchEvent(tpl, id)
			const samples = 5
			var colds, inits []float64
			for i := 0; i < b.N; i++ {
				for s := 0; s < samples; s++ {
					cold, warm := coldStart(b, id, host[id].Bootstrap, env, payload)
					colds = append(colds, ms(cold))
					inits = append(inits, ms(cold-warm))
				}
			}
			b.ReportMetric(median(colds), "ms/cold_start_median")
			b.ReportMetric(median(inits), "ms/init_median")
			b.ReportMetric(float64(st.Size())/(1<<20), "MB/bootstrap_arm64")
			b.ReportMetric(initGoalMs, "ms/init_goal")
			b.ReportMetric(bootstrapGoalMB, "MB/bootstrap_goal")
			if st.Size() > bootstrapGoalMB<<20 {
				b.Errorf("arm64 bootstrap is %.1f MB, over the %d MB goal", float64(st.Size())/(1<<20), bootstrapGoalMB)
			}
		})
	}
}

// Cold-start goals: init share of the first invocation, and the arm64 bootstrap's size.
const (
	initGoalMs      = 30
	bootstrapGoalMB = 15
)

// coldStart starts a fresh bootstrap process and returns the first invocation's time (process start to response)
// and a second, warm one's.
func coldStart(b *testing.B, id, bootstrap string, env []string, payload []byte) (cold, warm time.Duration) {
	b.Helper()
	ctx := context.Background()
	p := lambdarun.NewPool(lambdarun.Spec{Name: id, Bootstrap: bootstrap, PoolSize: 1, Timeout: 10 * time.Second, Env: env})
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		p.Close(cctx)
	}()
	t0 := time.Now()
	if _, err := p.Invoke(ctx, payload); err != nil {
		b.Fatal(err)
	}
	cold = time.Since(t0)
	t1 := time.Now()
	if _, err := p.Invoke(ctx, payload); err != nil {
		b.Fatal(err)
	}
	return cold, time.Since(t1)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// benchEvent is a payload-2.0 event on a path no function routes (or an empty object for non-HTTP functions).
func benchEvent(tpl *samtpl.Template, id string) []byte {
	for _, r := range tpl.Routes {
		if r.Function == id {
			path := "/bench/unrouted"
			ev := map[string]any{"version": "2.0", "routeKey": r.Key(), "rawPath": path, "headers": map[string]string{},
				"requestContext": map[string]any{"http": map[string]string{"method": r.Method, "path": path}, "stage": "$default"}}
			b, _ := json.Marshal(ev)
			return b
		}
	}
	return []byte(`{}`)
}
