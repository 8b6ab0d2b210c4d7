package deviceapi

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

var hostileIDs = []struct{ name, id string }{
	{"space", "a b"},
	{"double quote", `a"b`},
	{"single quote", "a'b"},
	{"newline", "a\nb"},
	{"CRLF header injection", "a\r\nX-Evil: 1"},
	{"tab", "a\tb"},
	{"NUL", "a\x00b"},
	{"backslash", `a\b`},
	{"slash", "a/b"},
	{"percent-encoded slash", "a%2Fb"},
	{"dot-dot", "../etc"},
	{"leading dot", ".hidden"},
	{"leading dash", "-dash"},
	{"leading underscore", "_under"},
	{"Flux string break", `x" or r.deviceId != "`},
	{"Flux pipe", `") |> drop(columns: ["_value"])`},
	{"predicate injection", `a" OR clientId="b`},
	{"semicolon", "a;b"},
	{"comma (line protocol tag)", "a,b=c"},
	{"equals", "a=b"},
	{"braces", "${jndi:ldap://x}"},
	{"angle brackets", "<script>alert(1)</script>"},
	{"question mark", "a?register=false"},
	{"hash", "a#b"},
	{"asterisk", "a*"},
	{"colon", "a:b"},
	{"at", "a@b"},
	{"plus", "a+b"},
	{"unicode letter", "é"},
	{"CJK", "設備"},
	{"zero-width space", "ok\u200b"},
	{"emoji", "dev🔥"},
	{"65 characters", strings.Repeat("a", 65)},
	{"10000 characters", strings.Repeat("a", 10000)},
}

func TestHostileInputIsRefusedWithoutSideEffects(t *testing.T) {
	f := newFixture(t)
	victim := f.newID("victim")
	tok := f.envOK(f.h, victim).InfluxToken
	type req struct{ method, path, query string }
	var cases []struct {
		name string
		req
	}
	for _, hc := range hostileIDs {
		for _, rq := range []req{
			{"GET", "/api/env/" + hc.id, ""},
			{"POST", "/api/devices/" + hc.id, ""},
			{"POST", "/api/devices/" + hc.id + "/rotate", ""},
			{"DELETE", "/api/devices/" + hc.id, "data=true"},
		} {
			cases = append(cases, struct {
				name string
				req
			}{hc.name + " " + rq.method, rq})
		}
	}
	for _, p := range []struct{ name, method, path, query string }{
		{"register=maybe", "GET", "/api/env/" + victim, "register=maybe"},
		{"register=FALSE", "GET", "/api/env/" + victim, "register=FALSE"},
		{"register=0", "GET", "/api/env/" + victim, "register=0"},
		{"register empty", "GET", "/api/env/" + victim, "register="},
		{"register twice", "GET", "/api/env/" + victim, "register=true&register=false"},
		{"register Flux", "GET", "/api/env/" + victim, `register=")|>yield()`},
		{"accept=text/html", "GET", "/api/env/" + victim, "accept=text/html"},
		{"accept twice", "GET", "/api/env/" + victim, "accept=text/plain&accept=text/plain"},
		{"unknown parameter", "GET", "/api/env/" + victim, "token=x"},
		{"malformed query", "GET", "/api/env/" + victim, "register=%zz"},
		{"semicolon query", "GET", "/api/env/" + victim, "register=true;x=1"},
		{"rotate with parameter", "POST", "/api/devices/" + victim + "/rotate", "force=true"},
		{"register with parameter", "POST", "/api/devices/" + victim, "register=false"},
		{"data=yes", "DELETE", "/api/devices/" + victim, "data=yes"},
		{"data=1", "DELETE", "/api/devices/" + victim, "data=1"},
		{"data twice", "DELETE", "/api/devices/" + victim, "data=true&data=true"},
		{"data Flux", "DELETE", "/api/devices/" + victim, `data=true" or "1"=="1`},
		{"delete unknown parameter", "DELETE", "/api/devices/" + victim, "predicate=clientId%3D%22x%22"},
		{"key twice", "GET", "/api/env/" + victim, "key=a&key=b"},
		{"long parameter name", "GET", "/api/env/" + victim, strings.Repeat("x", 5000) + "=1"},
	} {
		cases = append(cases, struct {
			name string
			req
		}{p.name, req{p.method, p.path, p.query}})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}

	a0, r0 := f.counts()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, f.h, tc.method, tc.path, tc.query)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("got %d %.200s, want 400", w.Code, w.Body.String())
			}
			if e := decode[map[string]any](t, w)["error"]; e == nil || e == "" {
				t.Errorf("no error message: %s", w.Body.String())
			}
		})
	}
	if a1, r1 := f.counts(); a1 != a0 || r1 != r0 {
		t.Errorf("side effect: authorizations %d -> %d, records %d -> %d", a0, a1, r0, r1)
	}
	if c := f.envOK(f.h, victim); c.InfluxToken != tok {
		t.Errorf("the victim's token changed")
	}
	if s := f.writeAs(tok, f.cfg.Bucket, victim, 1); s != http.StatusNoContent {
		t.Errorf("the victim's token stopped working: %d", s)
	}
}

func TestSecretsNeverInResponsesOrLogs(t *testing.T) {
	var logs syncbuf.Buffer
	prev := api.BaseLogger()
	api.SetBaseLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { api.SetBaseLogger(prev) })

	f := newFixture(t)
	id := f.newID("secret")
	var bodies []string
	var deviceTokens []string
	send := func(h http.Handler, method, path, query string, header ...string) int {
		w := do(t, h, method, path, query, header...)
		bodies = append(bodies, w.Body.String())
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && w.Code < 300 && method != "DELETE" && path != "/api/devices" {
			deviceTokens = append(deviceTokens, decode[EnvConfig](t, w).InfluxToken)
		}
		return w.Code
	}
	send(f.h, "GET", "/api/env/"+id, "")
	send(f.h, "GET", "/api/env/"+id, "accept=text/plain")
	send(f.h, "POST", "/api/devices/"+id, "")
	send(f.h, "POST", "/api/devices/"+id+"/rotate", "")
	send(f.h, "GET", "/api/env/bad%20id", "")
	send(f.h, "GET", "/api/env/"+f.newID("nope"), "register=false")
	send(f.h, "DELETE", "/api/devices/"+id, "data=true")

	// failures: InfluxDB unreachable (503) and an admin token InfluxDB refuses (500); both are logged with causes
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		token     string
		want      int
	}{
		{"unreachable", "http://127.0.0.1:" + strconv.Itoa(port), f.cfg.Token.Reveal(), http.StatusServiceUnavailable},
		{"refused token", f.srv.URL, f.cfg.Token.Reveal() + "-wrong", http.StatusInternalServerError},
	} {
		cfg := f.cfg
		cfg.InfluxURL, cfg.Token = tc.url, config.Secret(tc.token)
		c := influx.New(tc.url, tc.token, cfg.Org, influx.Options{Retry: influx.RetryPolicy{MaxAttempts: 1}})
		t.Cleanup(c.Close)
		h := asOperator(NewService(registry.New(c, cfg, f.table)).Routes())
		// a rotation of an unknown id needs only the state table
		for _, rq := range [][3]string{{"GET", "/api/env/" + id}, {"POST", "/api/devices/" + id},
			{"DELETE", "/api/devices/" + id}, {"POST", "/api/devices/" + id + "/rotate", "404"}} {
			want := strconv.Itoa(tc.want)
			if rq[2] != "" {
				want = rq[2]
			}
			if got := send(h, rq[0], rq[1], ""); strconv.Itoa(got) != want {
				t.Errorf("%s %s %s: got %d, want %s", tc.name, rq[0], rq[1], got, want)
			}
			if b := bodies[len(bodies)-1]; strings.Contains(b, "influxdb answered") || strings.Contains(b, "127.0.0.1") {
				t.Errorf("%s %s %s: the body reveals the cause: %s", tc.name, rq[0], rq[1], b)
			}
		}
		if strings.Contains(logs.String(), tc.token) {
			t.Errorf("%s: the configured admin token appears in a log line", tc.name)
		}
	}
	if len(deviceTokens) < 3 {
		t.Fatalf("device tokens collected: %d", len(deviceTokens))
	}
	admin := f.cfg.Token.Reveal()
	for i, b := range bodies {
		if strings.Contains(b, admin) || strings.Contains(b, admin[len(admin)-16:]) {
			t.Errorf("response %d holds the admin token", i)
		}
	}
	all := logs.String()
	if !strings.Contains(all, `"level":"ERROR"`) || !strings.Contains(all, "request failed") {
		t.Fatalf("expected the failures to be logged; logs:\n%.2000s", all)
	}
	if strings.Contains(all, admin[len(admin)-16:]) {
		t.Errorf("a log line holds the admin token")
	}
	for _, tok := range deviceTokens {
		if strings.Contains(all, tok) {
			t.Errorf("a log line holds a device token")
		}
	}
}
