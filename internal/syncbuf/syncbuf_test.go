package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWritesAndTail(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Errorf("len = %d, want 800", got)
	}
	if got := b.Tail(3); got != "xxx" {
		t.Errorf("Tail(3) = %q, want xxx", got)
	}
	if got := b.Tail(10000); got != strings.Repeat("x", 800) {
		t.Errorf("Tail(10000) has %d bytes, want 800", len(got))
	}
}
