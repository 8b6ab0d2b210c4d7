// Package syncbuf holds Buffer, a bytes.Buffer safe for concurrent writers: tests capture log lines and the output
// of child processes (emulators, the local API) written from several goroutines while they read it.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent use; the zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns at most the last n bytes written.
func (s *Buffer) Tail(n int) string {
	str := s.String()
	if len(str) > n {
		return str[len(str)-n:]
	}
	return str
}
