package main

import (
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `goos: linux
pkg: example.com/a
BenchmarkQuery/auto-2   	       1	  12345 ns/op	      4096 bytes/resp	  12.5 x_faster
BenchmarkBroken-2 oops
PASS
pkg: example.com/b
BenchmarkX-2 1 7 ns/op
--- FAIL: BenchmarkY
`
	tables, order, failed := parse(strings.NewReader(in), io.Discard)
	if !failed {
		t.Error("failed = false, want true")
	}
	if b := tables["example.com/b"]; len(b) != 1 || len(b[0].metrics) != 1 || b[0].metrics[0] != [2]string{"7", "ns/op"} {
		t.Errorf("table b = %+v, want the lone ns/op kept", b)
	}
	if len(order) != 2 || order[0] != "example.com/a" {
		t.Fatalf("order = %v", order)
	}
	a := tables["example.com/a"]
	if len(a) != 1 || a[0].name != "Query/auto-2" || len(a[0].metrics) != 2 || a[0].metrics[1] != [2]string{"12.5", "x_faster"} {
		t.Errorf("table a = %+v", a)
	}
}
