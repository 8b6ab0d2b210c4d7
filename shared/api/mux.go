package api

import "net/http"

// Mux is an http.ServeMux that remembers its patterns, so a function's routes can be compared with its events in
// template.yaml (internal/routetest) instead of with a copy of the wiring.
type Mux struct {
	mux      http.ServeMux
	patterns []string
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// HandleFunc registers h for pattern (http.ServeMux syntax).
func (m *Mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.mux.HandleFunc(pattern, h)
}

// Handle registers h for pattern (http.ServeMux syntax).
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.mux.Handle(pattern, h)
}

// Patterns returns the registered patterns in registration order.
func (m *Mux) Patterns() []string { return append([]string(nil), m.patterns...) }

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// NotFound answers every request no other pattern matches with a 404 JSON error (pattern "/", not a route).
func (m *Mux) NotFound(message string) {
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, Errorf(NotFound, "%s", message))
	})
}
