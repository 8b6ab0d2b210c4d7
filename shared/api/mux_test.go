package api_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// Only keeps the named routes with their handlers (a Require included) and serves nothing else.
func TestMuxOnly(t *testing.T) {
	all := api.NewMux()
	all.HandleFunc("GET /a", status(http.StatusNoContent))
	all.HandleFunc("GET /b", api.Require(api.RoleOperator, status(http.StatusAccepted)))
	all.HandleFunc("POST /c", status(http.StatusCreated))

	m := all.Only("POST /c", "GET /b")
	if got, want := m.Patterns(), []string{"POST /c", "GET /b"}; !slices.Equal(got, want) {
		t.Errorf("patterns: got %q, want %q", got, want)
	}
	for _, tc := range []struct {
		method, path, role string
		want               int
	}{
		{"POST", "/c", "", http.StatusCreated},
		{"GET", "/b", api.RoleOperator, http.StatusAccepted},
		{"GET", "/b", api.RoleDevice, http.StatusForbidden},
		{"GET", "/a", api.RoleOperator, http.StatusNotFound},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		r = r.WithContext(api.WithCaller(r.Context(), api.Caller{Role: tc.role}))
		w := httptest.NewRecorder()
		m.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s as %q: got %d, want %d", tc.method, tc.path, tc.role, w.Code, tc.want)
		}
	}
	if got := all.Patterns(); len(got) != 3 {
		t.Errorf("Only changed the original: %q", got)
	}
}

// A route the package does not serve is a wiring mistake, caught where the function is built.
func TestMuxOnlyUnknownRoutePanics(t *testing.T) {
	all := api.NewMux()
	all.HandleFunc("GET /a", status(http.StatusNoContent))
	defer func() {
		if recover() == nil {
			t.Error("Only with an unknown route did not panic")
		}
	}()
	all.Only("GET /nope")
}

// A path ServeMux would redirect (.., //, /./) is a 404 JSON error: no route has one, and a redirect helps no client.
func TestMuxNonCanonicalPathIs404(t *testing.T) {
	m := api.NewMux()
	m.HandleFunc("GET /assets/{p...}", status(http.StatusNoContent))
	m.HandleFunc("GET /a/", status(http.StatusNoContent))
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/assets/x.js", http.StatusNoContent},
		{"/a/", http.StatusNoContent},
		{"/assets/../a/", http.StatusNotFound},
		{"/assets//x.js", http.StatusNotFound},
		{"/assets/./x.js", http.StatusNotFound},
		// escaped slashes stay inside a segment, as ServeMux reads them: an id like "../etc" is the handler's to refuse
		{"/assets/..%2Fetc", http.StatusNoContent},
		{"/assets/%24%7Bjndi:ldap:%2F%2Fx%7D", http.StatusNoContent},
	} {
		w := httptest.NewRecorder()
		m.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		if w.Code != tc.want {
			t.Errorf("GET %s: got %d %s, want %d", tc.path, w.Code, w.Body, tc.want)
		}
		if tc.want == http.StatusNotFound && !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("GET %s: body %s, want a JSON error", tc.path, w.Body)
		}
	}
}
