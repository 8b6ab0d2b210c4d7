package deviceapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// originalEnvFields is the answer of iot-center-v2's GET /api/env/:deviceId (app/server/apis/index.js), in its
// order: the JSON object's members, and the lines of its text/plain (YAML) form.
var originalEnvFields = []string{"influx_url", "influx_org", "influx_token", "influx_bucket", "id", "default_lon",
	"default_lat", "measurement_interval", "newlyRegistered", "createdAt", "updatedAt", "serverTime",
	"configuration_refresh", "write_endpoint"}

// isoString is JavaScript's Date.prototype.toISOString(): UTC, exactly three fraction digits.
var isoString = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// jsonKeys returns an object's member names in the order they were sent.
func jsonKeys(t *testing.T, body []byte) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", body)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestEnvContract(t *testing.T) {
	f := newFixture(t)
	id := f.newID("contract")
	before := time.Now().UTC().Add(-time.Second)

	w := do(t, f.h, "GET", "/api/env/"+id, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET: got %d %s, want 200", w.Code, w.Body.String())
	}
	if got := jsonKeys(t, w.Body.Bytes()); !slices.Equal(got, originalEnvFields) {
		t.Errorf("JSON members:\n got %v\nwant %v", got, originalEnvFields)
	}
	c := decode[EnvConfig](t, w)
	if !isoString.MatchString(c.ServerTime) {
		t.Errorf("serverTime %q, want toISOString()'s form (3 fraction digits)", c.ServerTime)
	}
	if st, err := time.Parse(time.RFC3339, c.ServerTime); err != nil || st.Before(before) || st.After(time.Now().Add(time.Second)) {
		t.Errorf("serverTime %q (%v) is not now", c.ServerTime, err)
	}
	if c.WriteEndpoint == "" || c.WriteEndpoint != c.InfluxURL {
		t.Errorf("write_endpoint %q, want the URL devices write to (influx_url %q)", c.WriteEndpoint, c.InfluxURL)
	}

	for _, tc := range []struct {
		name, query string
		header      []string
	}{
		{"accept parameter", "accept=text/plain", nil},
		{"Accept header", "", []string{"Accept", "text/plain"}},
		{"Accept list preferring text", "", []string{"Accept", "application/json;q=0.5, text/plain"}},
	} {
		t.Run("text "+tc.name, func(t *testing.T) {
			w := do(t, f.h, "GET", "/api/env/"+id, tc.query, tc.header...)
			if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
				t.Fatalf("got %d %q, want 200 text/plain", w.Code, w.Header().Get("Content-Type"))
			}
			var keys []string
			vals := map[string]string{}
			for _, l := range strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n") {
				k, v, ok := strings.Cut(l, ": ")
				if !ok {
					t.Fatalf("line %q is not `key: value`", l)
				}
				keys, vals[k] = append(keys, k), v
			}
			if !slices.Equal(keys, originalEnvFields) {
				t.Errorf("lines:\n got %v\nwant %v", keys, originalEnvFields)
			}
			if !isoString.MatchString(vals["serverTime"]) || vals["write_endpoint"] != c.InfluxURL || vals["id"] != id {
				t.Errorf("serverTime %q, write_endpoint %q, id %q", vals["serverTime"], vals["write_endpoint"], vals["id"])
			}
		})
	}
}

// TestErrorsAsText: a caller that asked for text/plain gets its errors as `message: …` lines too.
func TestErrorsAsText(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, path, query string
		header            []string
		wantStatus        int
		wantLines         []string
	}{
		{"bad id, parameter", "/api/env/-bad", "accept=text/plain", nil, http.StatusBadRequest,
			[]string{"message: deviceId must match", "param: deviceId"}},
		{"unknown parameter, header", "/api/env/dev1", "bogus=1", []string{"Accept", "text/plain"}, http.StatusBadRequest,
			[]string{"message: unknown query parameter bogus", "param: bogus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, f.h, "GET", tc.path, tc.query, tc.header...)
			if w.Code != tc.wantStatus || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
				t.Fatalf("got %d %q %q, want %d text/plain", w.Code, w.Header().Get("Content-Type"), w.Body.String(), tc.wantStatus)
			}
			lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
			if len(lines) != len(tc.wantLines) {
				t.Fatalf("got lines %q, want %q", lines, tc.wantLines)
			}
			for i, want := range tc.wantLines {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d: got %q, want it to start with %q", i, lines[i], want)
				}
			}
		})
	}
	// JSON stays the answer for everyone else
	if w := do(t, f.h, "GET", "/api/env/-bad", ""); w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("without text: got %q, want JSON", w.Header().Get("Content-Type"))
	}
}
