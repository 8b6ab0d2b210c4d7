package api

import (
	"fmt"
	"net/http"
	"path"
	"strings"
)

// Mux is an http.ServeMux that remembers its routes, so a function's routes can be compared with its events in
// template.yaml (internal/routetest) and a function serving some of a package's routes can narrow to them (Only).
type Mux struct {
	mux      http.ServeMux
	patterns []string
	handlers map[string]http.Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// HandleFunc registers h for pattern (http.ServeMux syntax).
func (m *Mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Handle registers h for pattern (http.ServeMux syntax).
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h) // panics on a duplicate, before the pattern is recorded
	if m.handlers == nil {
		m.handlers = map[string]http.Handler{}
	}
	m.patterns = append(m.patterns, pattern)
	m.handlers[pattern] = h
}

// Only is a new Mux with just the given patterns of m and their handlers (roles included), in the given order: a
// function serving some of a package's routes narrows its Routes() with it. A pattern m lacks is a wiring mistake
// and panics at cold start.
func (m *Mux) Only(patterns ...string) *Mux {
	n := NewMux()
	for _, p := range patterns {
		h, ok := m.handlers[p]
		if !ok {
			panic(fmt.Sprintf("api.Mux.Only: no route %q among %q", p, m.patterns))
		}
		n.Handle(p, h)
	}
	return n
}

// Patterns returns the registered patterns in registration order.
func (m *Mux) Patterns() []string { return append([]string(nil), m.patterns...) }

// ServeHTTP answers a non-canonical path (.., //) 404 JSON where ServeMux would redirect: no route has one.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.EscapedPath(); p != "" && p != canonical(p) { // escaped, as ServeMux cleans it
		WriteError(w, r, Errorf(NotFound, "no such route"))
		return
	}
	m.mux.ServeHTTP(w, r)
}

// canonical is p cleaned as ServeMux cleans it (a trailing slash kept).
func canonical(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// NotFound answers every request no other pattern matches with a 404 JSON error (pattern "/", not a route).
func (m *Mux) NotFound(message string) {
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, Errorf(NotFound, "%s", message))
	})
}
