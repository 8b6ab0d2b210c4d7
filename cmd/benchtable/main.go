// Command benchtable reads `go test -bench` output on stdin, passes it through to stderr, and prints the results
// as one Markdown table per package on stdout: `make bench` pipes the benchmarks through it.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

type row struct {
	name    string
	metrics [][2]string // value, unit
}

func main() {
	tables, order, failed := parse(os.Stdin, os.Stderr)
	for _, pkg := range order {
		fmt.Printf("\n### %s\n\n| benchmark | figure | unit |\n|---|---:|---|\n", pkg)
		for _, r := range tables[pkg] {
			for _, m := range r.metrics {
				fmt.Printf("| %s | %s | %s |\n", r.name, m[0], m[1])
			}
		}
	}
	if failed {
		fmt.Println("\nsome benchmarks FAILED (see the output above)")
		os.Exit(1)
	}
}

// parse collects benchmark lines per package, echoing everything it reads to echo.
func parse(in io.Reader, echo io.Writer) (map[string][]row, []string, bool) {
	tables := map[string][]row{}
	var order []string
	pkg, failed := "", false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "--- FAIL"):
			failed = true
		case strings.HasPrefix(line, "Benchmark"):
			f := strings.Fields(line)
			if len(f) < 4 || len(f)%2 != 0 {
				continue
			}
			r := row{name: strings.TrimPrefix(f[0], "Benchmark")}
			for i := 2; i+1 < len(f); i += 2 {
				// with -benchtime 1x, ns/op is the whole benchmark's wall time: noise next to its own figures
				if f[i+1] == "ns/op" && len(f) > 4 {
					continue
				}
				r.metrics = append(r.metrics, [2]string{f[i], f[i+1]})
			}
			if _, ok := tables[pkg]; !ok {
				order = append(order, pkg)
			}
			tables[pkg] = append(tables[pkg], r)
		}
	}
	return tables, order, failed
}
