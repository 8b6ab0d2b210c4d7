package authz_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/authz"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

const (
	opKey   = "op-key-0123456789abcdef0123"
	provKey = "prov-key-0123456789abcdef0123"
)

// stack is the API in process: independent instances (each its own InfluxDB client, registry and handlers, as
// separate Lambda instances), each behind the real authorizer the way API Gateway puts it in front.
type stack struct {
	t     *testing.T
	srv   *influxtest.Server
	cfg   config.Config
	admin *influx.Client
	reg   *registry.Registry
	auth  *authz.Authorizer
	hs    []http.Handler
}

func newStack(t *testing.T, gateway bool, instances int) *stack {
	t.Helper()
	srv := influxtest.Shared(t)
	cfg := srv.Config(srv.NewBucket(t, "dec_data"))
	cfg.BucketDownsampled, cfg.DeviceWrites = srv.NewBucket(t, "dec_1h"), config.WritesDirect
	if gateway {
		cfg.DeviceWrites = config.WritesGateway
	}
	keys, err := authz.NewKeys(opKey, provKey, false)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, srv: srv, cfg: cfg, admin: srv.Client(t)}
	table := influxtest.StateTable(t)
	for i := 0; i < instances; i++ {
		c := influx.New(cfg.InfluxURL, cfg.Token.Reveal(), cfg.Org, influx.Options{})
		t.Cleanup(c.Close)
		reg := registry.New(c, cfg, table)
		q := measurements.NewService(c, reg, cfg.Bucket, 20*time.Second, measurements.WithDownsampled(cfg.BucketDownsampled)).Routes()
		mux := http.NewServeMux()
		mux.Handle("/", deviceapi.NewService(reg).Routes())
		mux.Handle("GET /api/devices/{deviceId}/measurements", q)
		mux.Handle("GET /api/devices/{deviceId}/summary", q)
		a := authz.New(keys, reg)
		a.Metrics = &strings.Builder{}
		s.hs = append(s.hs, authztest.Front(t, a, api.Handler(mux)))
		if i == 0 {
			s.reg, s.auth = reg, a
		}
	}
	return s
}

// newID is a fresh device id whose authorizations are revoked at the end of the test.
func (s *stack) newID(prefix string) string {
	id := prefix + "-" + influxtest.RandomID(4)
	s.srv.RevokeAtCleanup(s.t, registry.Description(id))
	return id
}

type answer struct {
	code int
	body string
	cfg  deviceapi.EnvConfig
}

// call sends one request through instance i with key as the bearer ("" for none).
func (s *stack) call(i int, method, target, key string) answer {
	s.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	s.hs[i%len(s.hs)].ServeHTTP(w, r)
	a := answer{code: w.Code, body: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &a.cfg)
	return a
}

func (s *stack) auths(id string) []influx.Authorization {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	as, err := s.admin.FindAuthorizations(ctx, registry.Description(id))
	if err != nil {
		s.t.Fatal(err)
	}
	return as
}

func (s *stack) register(id string) deviceapi.EnvConfig {
	s.t.Helper()
	a := s.call(0, "POST", "/api/devices/"+id, opKey)
	if a.code != http.StatusCreated || a.cfg.InfluxToken == "" {
		s.t.Fatalf("registering %s: got %d %s", id, a.code, a.body)
	}
	return a.cfg
}

func modes(t *testing.T, f func(t *testing.T, gateway bool)) {
	for _, gateway := range []bool{true, false} {
		name := "direct"
		if gateway {
			name = "gateway"
		}
		t.Run(name, func(t *testing.T) { f(t, gateway) })
	}
}

// 3 ids × 20 simultaneous provisioning calls over 5 instances: exactly one caller per id gets a credential (the
// one whose registration created the device), every other gets 403, none a 5xx.
func TestProvisioningRaceOneCredentialPerID(t *testing.T) {
	modes(t, func(t *testing.T, gateway bool) {
		s := newStack(t, gateway, 5)
		ids := []string{s.newID("race0"), s.newID("race1"), s.newID("race2")}
		const perID = 20
		res := make([]answer, len(ids)*perID)
		took := testenv.Together(len(res), func(i int) {
			res[i] = s.call(i, "GET", "/api/env/"+ids[i%len(ids)], provKey)
		})
		codes := map[int]int{}
		for i, id := range ids {
			var tokens []string
			for j := i; j < len(res); j += len(ids) {
				a := res[j]
				codes[a.code]++
				switch {
				case a.code == http.StatusOK && a.cfg.InfluxToken != "" && a.cfg.NewlyRegistered:
					tokens = append(tokens, a.cfg.InfluxToken)
				case a.code == http.StatusForbidden && !strings.Contains(a.body, "influx_token"):
				default:
					t.Errorf("%s: got %d %.200s, want 200 with a new credential or 403 without", id, a.code, a.body)
				}
			}
			if len(tokens) != 1 {
				t.Fatalf("%s: %d callers got a credential, want exactly 1", id, len(tokens))
			}
			as := s.auths(id)
			d, err := s.reg.Get(context.Background(), id)
			switch {
			case err != nil:
				t.Fatalf("%s: record: %v", id, err)
			case gateway && len(as) != 0:
				t.Fatalf("%s: %d InfluxDB authorizations, want none (gateway credentials are not InfluxDB's)", id, len(as))
			case !gateway && (len(as) != 1 || d.AuthorizationID != as[0].ID):
				t.Fatalf("%s: %d authorizations, record %v: want one, named by the record", id, len(as), d.AuthorizationID)
			}
			if gateway {
				if dd, err := s.reg.Authenticate(context.Background(), tokens[0]); err != nil || dd.ID != id {
					t.Errorf("%s: the winner's credential does not authenticate: %v", id, err)
				}
			} else if d.Token.Reveal() != tokens[0] {
				t.Errorf("%s: the winner's token is not the recorded one", id)
			}
		}
		t.Logf("%d ids × %d provisioning calls over %d instances: answers %v in %s", len(ids), perID, len(s.hs), codes, took.Round(time.Millisecond))
	})
}

// ?register=false gives the provisioning key one answer whether or not the id exists.
func TestProvisioningRegisterFalseOneAnswer(t *testing.T) {
	s := newStack(t, true, 1)
	known, unknown := s.newID("known"), s.newID("unknown")
	s.register(known)
	a := s.call(0, "GET", "/api/env/"+known+"?register=false", provKey)
	b := s.call(0, "GET", "/api/env/"+unknown+"?register=false", provKey)
	if a.code != http.StatusForbidden || a.code != b.code || strings.ReplaceAll(a.body, known, "ID") != strings.ReplaceAll(b.body, unknown, "ID") {
		t.Errorf("known: %d %s; unknown: %d %s; want the same 403", a.code, a.body, b.code, b.body)
	}
	if n := len(s.auths(unknown)); n != 0 {
		t.Errorf("register=false created %d authorizations", n)
	}
	// and with register=true an existing id is 403 without a credential
	if c := s.call(0, "GET", "/api/env/"+known, provKey); c.code != http.StatusForbidden || c.cfg.InfluxToken != "" {
		t.Errorf("provisioning key on an existing id: got %d %s, want 403", c.code, c.body)
	}
}

// Requests authorized before a delete, run after it, register nothing: the device stays deleted.
func TestNoRegistrationAuthorizedBeforeADelete(t *testing.T) {
	modes(t, func(t *testing.T, gateway bool) {
		s := newStack(t, gateway, 1)
		id := s.newID("inflight")
		s.register(id)
		ctx := context.Background()
		decide := func(route, key string) authz.Decision {
			d, err := s.auth.Decide(ctx, authz.Request{RouteKey: route, DeviceID: id, Key: key})
			if err != nil || !d.Allow {
				t.Fatalf("%s: got %+v %v, want allowed", route, d, err)
			}
			return d
		}
		inflight := []struct {
			name, method, target string
			d                    authz.Decision
		}{
			{"operator env", "GET", "/api/env/" + id, decide(authz.EnvRouteKey, opKey)},
			{"provisioning env", "GET", "/api/env/" + id, decide(authz.EnvRouteKey, provKey)},
			{"operator register", "POST", "/api/devices/" + id, decide("POST /api/devices/{deviceId}", opKey)},
			{"operator rotate", "POST", "/api/devices/" + id + "/rotate", decide("POST /api/devices/{deviceId}/rotate", opKey)},
		}
		if a := s.call(0, "DELETE", "/api/devices/"+id, opKey); a.code != http.StatusNoContent {
			t.Fatalf("delete: got %d %s", a.code, a.body)
		}
		h := api.Handler(deviceapi.NewService(s.reg).Routes())
		for _, f := range inflight {
			r := httptest.NewRequest(f.method, f.target, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r.WithContext(api.WithCaller(ctx, f.d.Caller())))
			if w.Code < 400 || w.Code >= 500 || strings.Contains(w.Body.String(), "influx_token") {
				t.Errorf("%s authorized before the delete: got %d %s, want a 4xx without a credential", f.name, w.Code, w.Body.String())
			}
		}
		if _, err := s.reg.Get(ctx, id); !api.IsCode(err, api.NotFound) {
			t.Errorf("after the delete: got %v, want not registered", err)
		}
		if n := len(s.auths(id)); n != 0 {
			t.Errorf("after the delete: %d authorizations, want 0", n)
		}
		// a request authorized after the delete registers again, as it should
		if a := s.call(0, "GET", "/api/env/"+id, provKey); a.code != http.StatusOK || a.cfg.InfluxToken == "" {
			t.Errorf("provisioning after the delete: got %d %s, want 200 with a credential", a.code, a.body)
		}
	})
}

// A device polling its configuration while the operator rotates it and then deletes it: the old credential never
// receives a newer one, and after the delete nothing brings the device back.
func TestRotationAndDeletionUnderEnvStream(t *testing.T) {
	modes(t, func(t *testing.T, gateway bool) {
		s := newStack(t, gateway, 3)
		id := s.newID("stream")
		creds := []string{s.register(id).InfluxToken}
		var mu sync.Mutex
		current := creds[0]
		type seen struct {
			presented string
			a         answer
		}
		var log []seen
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 2000; n++ { // bounded; stopped by the test long before
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					cred := current
					if n%2 == 1 {
						cred = creds[0] // the first credential keeps trying too
					}
					mu.Unlock()
					a := s.call(g+n, "GET", "/api/env/"+id, cred)
					mu.Lock()
					log = append(log, seen{cred, a})
					mu.Unlock()
				}
			}()
		}
		for r := 0; r < 3; r++ {
			time.Sleep(100 * time.Millisecond) // let the stream run between changes (not a synchronisation)
			a := s.call(r, "POST", "/api/devices/"+id+"/rotate", opKey)
			if a.code != http.StatusOK || a.cfg.InfluxToken == "" {
				t.Fatalf("rotate %d: got %d %s", r, a.code, a.body)
			}
			mu.Lock()
			creds = append(creds, a.cfg.InfluxToken)
			current = a.cfg.InfluxToken
			mu.Unlock()
		}
		time.Sleep(100 * time.Millisecond)
		if a := s.call(0, "DELETE", "/api/devices/"+id, opKey); a.code != http.StatusNoContent {
			t.Fatalf("delete: got %d %s", a.code, a.body)
		}
		time.Sleep(200 * time.Millisecond)
		close(stop)
		wg.Wait()
		index := map[string]int{}
		for i, c := range creds {
			index[c] = i
		}
		codes := map[int]int{}
		for _, e := range log {
			codes[e.a.code]++
			switch {
			case e.a.code >= 500:
				t.Errorf("credential %d: got %d %s", index[e.presented], e.a.code, e.a.body)
			case e.a.code == http.StatusOK && e.a.cfg.InfluxToken != e.presented:
				t.Errorf("credential %d received credential %d", index[e.presented], index[e.a.cfg.InfluxToken])
			case e.a.code != http.StatusOK && strings.Contains(e.a.body, "influx_token"):
				t.Errorf("a refusal carries a configuration: %s", e.a.body)
			}
		}
		if codes[http.StatusOK] == 0 {
			t.Errorf("the stream never got its configuration: %v", codes)
		}
		if _, err := s.reg.Get(context.Background(), id); !api.IsCode(err, api.NotFound) {
			t.Errorf("after the delete: got %v, want not registered", err)
		}
		if n := len(s.auths(id)); n != 0 {
			t.Errorf("after the delete: %d authorizations, want 0", n)
		}
		for i, c := range creds {
			if a := s.call(0, "GET", "/api/env/"+id, c); a.code != http.StatusForbidden {
				t.Errorf("credential %d after the delete: got %d %s, want 403", i, a.code, a.body)
			}
		}
		t.Logf("%d env calls during 3 rotations and a delete: %v", len(log), codes)
	})
}

// Keys only in the Authorization header: a key in the URL is refused with 400 JSON and nothing changes.
func TestKeyInQueryRefused(t *testing.T) {
	s := newStack(t, true, 1)
	id := s.newID("q")
	for _, tc := range []struct{ method, target, header string }{
		{"POST", "/api/devices/" + id + "?key=" + opKey, ""},
		{"GET", "/api/env/" + id + "?key=" + provKey, ""},
		{"GET", "/api/env/" + id + "?key=" + provKey, provKey},
		{"GET", "/api/devices?key=" + opKey, opKey},
		{"GET", "/api/devices?key=nonsense", ""},
	} {
		a := s.call(0, tc.method, tc.target, tc.header)
		if a.code != http.StatusBadRequest || !strings.Contains(a.body, "Authorization header") {
			t.Errorf("%s %s: got %d %s, want 400 naming the Authorization header", tc.method, tc.target, a.code, a.body)
		}
	}
	if n := len(s.auths(id)); n != 0 {
		t.Errorf("a request with ?key= created %d authorizations", n)
	}
}

// A device credential reads its own measurements and summary and nothing else.
func TestDeviceReadsOnlyItsOwnData(t *testing.T) {
	modes(t, func(t *testing.T, gateway bool) {
		s := newStack(t, gateway, 1)
		a, b := s.newID("own"), s.newID("other")
		credA := s.register(a).InfluxToken
		s.register(b)
		for _, tc := range []struct {
			method, target string
			want           int
		}{
			{"GET", "/api/devices/" + a + "/summary?range=1h", http.StatusOK},
			{"GET", "/api/devices/" + a + "/measurements?start=-1h", http.StatusOK},
			{"GET", "/api/env/" + a, http.StatusOK},
			{"GET", "/api/devices/" + b + "/summary?range=1h", http.StatusForbidden},
			{"GET", "/api/devices/" + b + "/measurements?start=-1h", http.StatusForbidden},
			{"GET", "/api/env/" + b, http.StatusForbidden},
			{"GET", "/api/devices", http.StatusForbidden},
			{"POST", "/api/devices/" + a + "/rotate", http.StatusForbidden},
			{"DELETE", "/api/devices/" + a, http.StatusForbidden},
		} {
			if got := s.call(0, tc.method, tc.target, credA); got.code != tc.want {
				t.Errorf("%s %s with A's credential: got %d %s, want %d", tc.method, tc.target, got.code, got.body, tc.want)
			}
		}
		if r := s.call(0, "POST", "/api/devices/"+a+"/rotate", opKey); r.code != http.StatusOK {
			t.Fatalf("rotate: %d %s", r.code, r.body)
		}
		if got := s.call(0, "GET", "/api/devices/"+a+"/summary?range=1h", credA); got.code != http.StatusForbidden {
			t.Errorf("summary with the rotated-out credential: got %d, want 403", got.code)
		}
	})
}

// The function re-checks the record: a device decision whose credential was rotated out between the authorizer
// and the function is refused, and a decision for another device is refused.
func TestFunctionsActOnTheDecision(t *testing.T) {
	s := newStack(t, true, 1)
	a := s.newID("dec")
	cred := s.register(a).InfluxToken
	ctx := context.Background()
	d, err := s.auth.Decide(ctx, authz.Request{RouteKey: "GET /api/devices/{deviceId}/summary", DeviceID: a, Key: cred})
	if err != nil || !d.Allow || d.Role != authz.RoleDevice || d.CredentialID == "" {
		t.Fatalf("decision: %+v %v", d, err)
	}
	if r := s.call(0, "POST", "/api/devices/"+a+"/rotate", opKey); r.code != http.StatusOK {
		t.Fatalf("rotate: %d", r.code)
	}
	h := api.Handler(measurements.NewService(influx.New(s.cfg.InfluxURL, s.cfg.Token.Reveal(), s.cfg.Org, influx.Options{}), s.reg, s.cfg.Bucket, 10*time.Second).Routes())
	for _, tc := range []struct {
		name   string
		c      api.Caller
		target string
		want   int
	}{
		{"rotated out in between", d.Caller(), "/api/devices/" + a + "/summary?range=1h", http.StatusUnauthorized},
		{"no decision", api.Caller{Generation: -1}, "/api/devices/" + a + "/summary?range=1h", http.StatusForbidden},
		{"provisioning role", api.Caller{Role: authz.RoleProvisioning, DeviceID: a, Generation: -1}, "/api/devices/" + a + "/summary?range=1h", http.StatusForbidden},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.WithContext(api.WithCaller(ctx, tc.c)))
		if w.Code != tc.want {
			t.Errorf("%s: got %d %s, want %d", tc.name, w.Code, w.Body.String(), tc.want)
		}
	}
}
