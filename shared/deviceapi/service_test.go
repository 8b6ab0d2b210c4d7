package deviceapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

var envKeys = []string{"influx_url", "influx_org", "influx_token", "influx_bucket", "id", "default_lon", "default_lat",
	"measurement_interval", "newlyRegistered", "createdAt", "updatedAt", "serverTime", "configuration_refresh", "write_endpoint"}

func TestEnvRegistersDeviceAndTokenWritesItsBucket(t *testing.T) {
	f := newFixture(t)
	id := f.newID("dev")

	w := do(t, f.h, "GET", "/api/env/"+id, "")
	if w.Code != http.StatusOK {
		t.Fatalf("first GET: got %d %s, want 200", w.Code, w.Body.String())
	}
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := slices.Clone(envKeys)
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys: got %v, want %v", keys, want)
	}
	c := decode[EnvConfig](t, w)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"influx_url", c.InfluxURL, f.cfg.InfluxPublicURL},
		{"influx_org", c.InfluxOrg, f.cfg.Org},
		{"influx_bucket", c.InfluxBucket, f.cfg.Bucket},
		{"id", c.ID, id},
		{"newlyRegistered", c.NewlyRegistered, true},
		{"default_lat", c.DefaultLat, 50.0873254},
		{"default_lon", c.DefaultLon, 14.4071543},
		{"measurement_interval", c.MeasurementInterval, 60},
		{"configuration_refresh", c.ConfigurationRefresh, 3600},
		{"write_endpoint", c.WriteEndpoint, f.cfg.InfluxPublicURL},
		{"token present", c.InfluxToken != "", true},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	for _, ts := range []string{c.CreatedAt, c.UpdatedAt, c.ServerTime} {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("time %q is not RFC 3339: %v", ts, err)
		}
	}

	// exactly one authorization: read+write on the data bucket's id only
	as := f.auths(id)
	if len(as) != 1 {
		t.Fatalf("authorizations: got %d, want 1", len(as))
	}
	dataID, _ := f.admin.BucketID(ctxT(t), f.cfg.Bucket)
	var perms []string
	for _, p := range as[0].Permissions {
		perms = append(perms, p.Action+":"+p.Type+":"+p.BucketID)
	}
	sort.Strings(perms)
	if wantP := []string{"read:buckets:" + dataID, "write:buckets:" + dataID}; !slices.Equal(perms, wantP) {
		t.Errorf("permissions: got %v, want %v", perms, wantP)
	}

	// the device writes its data bucket with its token and reads it back
	if s := f.writeAs(c.InfluxToken, f.cfg.Bucket, id, 21.5); s != http.StatusNoContent {
		t.Fatalf("device write: got %d, want 204", s)
	}
	vals, s := f.readAs(c.InfluxToken, f.cfg.Bucket, id)
	if s != http.StatusOK || !slices.Equal(vals, []float64{21.5}) {
		t.Fatalf("device read: got %v (%d), want [21.5] (200)", vals, s)
	}

	// again: same token, not newly registered, still one authorization
	c2 := f.envOK(f.h, id)
	if c2.InfluxToken != c.InfluxToken || c2.NewlyRegistered || c2.CreatedAt != c.CreatedAt {
		t.Errorf("second GET: token same=%v newly=%v createdAt %s vs %s", c2.InfluxToken == c.InfluxToken,
			c2.NewlyRegistered, c2.CreatedAt, c.CreatedAt)
	}
	if n := len(f.auths(id)); n != 1 {
		t.Errorf("authorizations after second GET: got %d, want 1", n)
	}
}

func TestDeviceTokenIsLeastPrivilege(t *testing.T) {
	f := newFixture(t)
	id := f.newID("lp")
	other := f.srv.NewBucket(t, "other")
	tok := f.envOK(f.h, id).InfluxToken
	for _, tc := range []struct {
		name      string
		bucket    string
		wantWrite int
		wantRead  int
	}{
		{"data bucket", f.cfg.Bucket, http.StatusNoContent, http.StatusOK},
		{"other bucket", other, http.StatusForbidden, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.writeAs(tok, tc.bucket, id, 1); got != tc.wantWrite {
				t.Errorf("write: got %d, want %d", got, tc.wantWrite)
			}
			if _, got := f.readAs(tok, tc.bucket, id); got != tc.wantRead {
				t.Errorf("read: got %d, want %d", got, tc.wantRead)
			}
		})
	}
}

func TestEnvRegisterFalse(t *testing.T) {
	f := newFixture(t)
	id := f.newID("nr")
	a0, r0 := f.counts()
	w := do(t, f.h, "GET", "/api/env/"+id, "register=false")
	if w.Code != http.StatusForbidden {
		t.Fatalf("got %d %s, want 403", w.Code, w.Body.String())
	}
	body := decode[map[string]any](t, w)
	if len(body) != 2 || body["id"] != id || body["registered"] != false {
		t.Errorf("body: got %v, want {id: %s, registered: false}", body, id)
	}
	if a1, r1 := f.counts(); a1 != a0 || r1 != r0 {
		t.Errorf("side effect: authorizations %d -> %d, records %d -> %d", a0, a1, r0, r1)
	}
	// a registered device is answered normally with register=false
	tok := f.envOK(f.h, id).InfluxToken
	w = do(t, f.h, "GET", "/api/env/"+id, "register=false")
	if w.Code != http.StatusOK || decode[EnvConfig](t, w).InfluxToken != tok {
		t.Errorf("registered device with register=false: got %d %s", w.Code, w.Body.String())
	}
}

func TestEnvTextPlain(t *testing.T) {
	f := newFixture(t)
	id := f.newID("txt")
	tok := f.envOK(f.h, id).InfluxToken
	for _, tc := range []struct {
		name   string
		query  string
		header []string
	}{
		{"Accept header", "", []string{"Accept", "text/plain"}},
		{"accept parameter", "accept=text/plain", nil},
		{"Accept header with charset", "", []string{"Accept", "text/plain; charset=utf-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, f.h, "GET", "/api/env/"+id, tc.query, tc.header...)
			if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
				t.Fatalf("got %d %q, want 200 text/plain", w.Code, w.Header().Get("Content-Type"))
			}
			lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
			if len(lines) != len(envKeys) {
				t.Fatalf("lines: got %d, want %d:\n%s", len(lines), len(envKeys), w.Body.String())
			}
			got := map[string]string{}
			for i, l := range lines {
				k, v, ok := strings.Cut(l, ": ")
				if !ok || k != envKeys[i] {
					t.Errorf("line %d: got %q, want key %s", i, l, envKeys[i])
				}
				got[k] = v
			}
			for k, want := range map[string]string{"id": id, "influx_token": tok, "newlyRegistered": "false",
				"default_lat": "50.0873254", "measurement_interval": "60", "write_endpoint": f.cfg.InfluxPublicURL, "influx_bucket": f.cfg.Bucket} {
				if got[k] != want {
					t.Errorf("%s: got %q, want %q", k, got[k], want)
				}
			}
		})
	}
	// a key in the URL is refused: keys travel only in the Authorization header
	if w := do(t, f.h, "GET", "/api/env/"+id, "key=k-123&accept=text/plain"); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), "Authorization header") {
		t.Errorf("with key parameter: got %d %q, want 400 naming the Authorization header", w.Code, w.Body.String())
	}
	// JSON stays the default, also when explicitly asked for
	w := do(t, f.h, "GET", "/api/env/"+id, "accept=application/json")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("accept=application/json: got %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}

func TestRegisterPost(t *testing.T) {
	f := newFixture(t)
	id := f.newID("post")
	c1 := f.expect(f.h, "POST", "/api/devices/"+id, http.StatusCreated)
	c2 := f.expect(f.h, "POST", "/api/devices/"+id, http.StatusOK)
	if c1.InfluxToken == "" || c2.InfluxToken != c1.InfluxToken || !c1.NewlyRegistered || c2.NewlyRegistered {
		t.Errorf("tokens equal=%v newly %v/%v", c2.InfluxToken == c1.InfluxToken, c1.NewlyRegistered, c2.NewlyRegistered)
	}
	if n := len(f.auths(id)); n != 1 {
		t.Errorf("authorizations: got %d, want 1", n)
	}
	if c3 := f.envOK(f.h, id); c3.InfluxToken != c1.InfluxToken {
		t.Errorf("env after POST gave another token")
	}
}

func TestRotate(t *testing.T) {
	f := newFixture(t)
	id := f.newID("rot")
	old := f.envOK(f.h, id)
	time.Sleep(5 * time.Millisecond) // updatedAt must move
	nc := f.expect(f.h, "POST", "/api/devices/"+id+"/rotate", http.StatusOK)
	if nc.InfluxToken == "" || nc.InfluxToken == old.InfluxToken {
		t.Fatalf("rotate did not change the token")
	}
	if nc.CreatedAt != old.CreatedAt || nc.UpdatedAt <= old.UpdatedAt {
		t.Errorf("times: createdAt %s -> %s (want same), updatedAt %s -> %s (want later)", old.CreatedAt, nc.CreatedAt,
			old.UpdatedAt, nc.UpdatedAt)
	}
	if s := f.writeAs(old.InfluxToken, f.cfg.Bucket, id, 1); s != http.StatusUnauthorized {
		t.Errorf("old token write: got %d, want 401", s)
	}
	if s := f.writeAs(nc.InfluxToken, f.cfg.Bucket, id, 2); s != http.StatusNoContent {
		t.Errorf("new token write: got %d, want 204", s)
	}
	if as := f.auths(id); len(as) != 1 {
		t.Errorf("authorizations: got %d, want 1", len(as))
	}
	if c := f.envOK(f.h, id); c.InfluxToken != nc.InfluxToken {
		t.Errorf("env after rotate answers another token")
	}
	if w := do(t, f.h, "POST", "/api/devices/"+f.newID("nobody")+"/rotate", ""); w.Code != http.StatusNotFound {
		t.Errorf("rotate unknown: got %d, want 404", w.Code)
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	keep, drop, unknown := f.newID("keep"), f.newID("drop"), f.newID("unknown")
	toks := map[string]string{}
	for _, id := range []string{keep, drop} {
		toks[id] = f.envOK(f.h, id).InfluxToken
		if s := f.writeAs(toks[id], f.cfg.Bucket, id, 3); s != http.StatusNoContent {
			t.Fatalf("write %s: %d", id, s)
		}
	}
	for _, tc := range []struct {
		id, query string
		wantData  int
	}{
		{keep, "", 1},
		{drop, "data=true", 0},
	} {
		w := do(t, f.h, "DELETE", "/api/devices/"+tc.id, tc.query)
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("DELETE %s?%s: got %d %q, want 204", tc.id, tc.query, w.Code, w.Body.String())
		}
		if s := f.writeAs(toks[tc.id], f.cfg.Bucket, tc.id, 4); s != http.StatusUnauthorized {
			t.Errorf("%s: deleted token write: got %d, want 401", tc.id, s)
		}
		if n := len(f.auths(tc.id)); n != 0 {
			t.Errorf("%s: authorizations left: %d", tc.id, n)
		}
		if _, err := f.reg.Get(ctxT(t), tc.id); !api.IsCode(err, api.NotFound) {
			t.Errorf("%s: record after delete: err %v, want not found", tc.id, err)
		}
		var n int
		err := f.admin.QueryRows(ctxT(t), readFlux, influx.Extern{"b": f.cfg.Bucket, "id": tc.id}, func(map[string]any) error { n++; return nil })
		if err != nil || n != tc.wantData {
			t.Errorf("%s: data points left: got %d (%v), want %d", tc.id, n, err, tc.wantData)
		}
		if w := do(t, f.h, "DELETE", "/api/devices/"+tc.id, ""); w.Code != http.StatusNotFound {
			t.Errorf("second DELETE %s: got %d, want 404", tc.id, w.Code)
		}
	}
	if w := do(t, f.h, "DELETE", "/api/devices/"+unknown, ""); w.Code != http.StatusNotFound {
		t.Errorf("DELETE unknown: got %d, want 404", w.Code)
	}
	// leftover data of an unknown device (a delete that failed half-way) goes with data=true, still 404
	if s := f.writeAs(f.cfg.Token.Reveal(), f.cfg.Bucket, unknown, 9); s != http.StatusNoContent {
		t.Fatalf("admin write: %d", s)
	}
	if w := do(t, f.h, "DELETE", "/api/devices/"+unknown, "data=true"); w.Code != http.StatusNotFound {
		t.Errorf("DELETE unknown with data: got %d, want 404", w.Code)
	}
	if vals, _ := f.readAs(f.cfg.Token.Reveal(), f.cfg.Bucket, unknown); len(vals) != 0 {
		t.Errorf("leftover data of an unknown device: got %v, want none", vals)
	}
	// a deleted device registers again from scratch, with a new token
	if c := f.envOK(f.h, keep); !c.NewlyRegistered || c.InfluxToken == toks[keep] {
		t.Errorf("re-registration after delete: newly=%v sameToken=%v", c.NewlyRegistered, c.InfluxToken == toks[keep])
	}
}

func TestSelfHealing(t *testing.T) {
	f := newFixture(t)
	f.reg.StaleAfter = 0 // an inactive authorization is an operator's deactivation, not a winner about to activate
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, a influx.Authorization)
	}{
		{"authorization deleted", func(t *testing.T, a influx.Authorization) {
			if err := f.admin.DeleteAuthorization(ctxT(t), a.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"authorization inactive", func(t *testing.T, a influx.Authorization) {
			if _, err := f.admin.Raw().AuthorizationsAPI().UpdateAuthorizationStatusWithID(ctxT(t), a.ID, "inactive"); err != nil {
				t.Fatal(err)
			}
		}},
		{"authorization for another bucket", func(t *testing.T, a influx.Authorization) {
			other := f.srv.NewBucket(t, "moved")
			otherID, _ := f.admin.BucketID(ctxT(t), other)
			na, err := f.admin.CreateBucketAuthorization(ctxT(t), "IoT Center: test helper", otherID)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.admin.DeleteAuthorization(ctxT(t), na.ID) })
			d, _ := f.reg.Get(ctxT(t), strings.TrimPrefix(a.Description, "IoT Center: "))
			d.AuthorizationID, d.Token = na.ID, "t"
			if _, err := f.table.DB.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: &f.table.Name, Item: registry.Item(d)}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := f.newID("heal")
			old := f.envOK(f.h, id)
			as := f.auths(id)
			if len(as) != 1 {
				t.Fatalf("authorizations: %d", len(as))
			}
			tc.break_(t, as[0])
			c := f.envOK(f.h, id)
			if c.InfluxToken == old.InfluxToken || c.NewlyRegistered || c.CreatedAt != old.CreatedAt {
				t.Errorf("healed: sameToken=%v newly=%v createdAt %s vs %s", c.InfluxToken == old.InfluxToken,
					c.NewlyRegistered, c.CreatedAt, old.CreatedAt)
			}
			if s := f.writeAs(c.InfluxToken, f.cfg.Bucket, id, 5); s != http.StatusNoContent {
				t.Errorf("healed token write: got %d, want 204", s)
			}
			if as := f.auths(id); len(as) != 1 {
				t.Errorf("authorizations after healing: got %d, want 1", len(as))
			}
		})
	}
}

func TestDeviceCap(t *testing.T) {
	f := newFixture(t)
	f.cfg.MaxDevices = 2
	reg := registry.New(f.admin, f.cfg, f.table)
	h := asOperator(NewService(reg).Routes())
	a, b, c := f.newID("cap"), f.newID("cap"), f.newID("cap")
	f.envOK(h, a)
	f.envOK(h, b)
	a0, r0 := f.counts()
	for _, tc := range []struct{ method, path string }{{"GET", "/api/env/" + c}, {"POST", "/api/devices/" + c}} {
		w := do(t, h, tc.method, tc.path, "")
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Content-Type") != "application/json" ||
			decode[map[string]string](t, w)["error"] == "" {
			t.Errorf("%s %s over the cap: got %d %s, want 429 JSON", tc.method, tc.path, w.Code, w.Body.String())
		}
	}
	if a1, r1 := f.counts(); a1 != a0 || r1 != r0 {
		t.Errorf("side effect: authorizations %d -> %d, records %d -> %d", a0, a1, r0, r1)
	}
	// existing devices still work, and a freed slot can be used
	f.envOK(h, a)
	if w := do(t, h, "DELETE", "/api/devices/"+b, ""); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d", w.Code)
	}
	f.envOK(h, c)
}

// TestCrashLeftovers: a caller that crashed after winning left the current authorization inactive (the next env
// call activates it); one that crashed before writing left an inactive orphan, which opens nothing and which the
// device's next rotation revokes.
func TestCrashLeftovers(t *testing.T) {
	f := newFixture(t)
	id := f.newID("crash")
	c := f.envOK(f.h, id)
	d, err := f.reg.Get(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	// crashed after winning: the item names an authorization still inactive
	if _, err := f.admin.Raw().AuthorizationsAPI().UpdateAuthorizationStatusWithID(ctxT(t), d.AuthorizationID, "inactive"); err != nil {
		t.Fatal(err)
	}
	if s := f.writeAs(c.InfluxToken, f.cfg.Bucket, id, 1); s == http.StatusNoContent {
		t.Fatalf("inactive token write: got %d, want a refusal", s)
	}
	if again := f.envOK(f.h, id); again.InfluxToken != c.InfluxToken {
		t.Errorf("env after a crashed winner: another token, want the recorded one activated")
	}
	if s := f.writeAs(c.InfluxToken, f.cfg.Bucket, id, 2); s != http.StatusNoContent {
		t.Errorf("activated token write: got %d, want 204", s)
	}
	// crashed before writing: an inactive orphan
	orphan, err := f.admin.CreateInactiveAuthorization(ctxT(t), registry.Description(id), f.cfg.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if s := f.writeAs(orphan.Token, f.cfg.Bucket, id, 3); s == http.StatusNoContent {
		t.Errorf("orphan token write: got %d, want a refusal", s)
	}
	reg, _ := f.instance()
	reg.StaleAfter = 0 // the orphan counts as a crashed caller's at once
	nd, won, err := reg.Rotate(ctxT(t), id)
	if err != nil || !won {
		t.Fatalf("rotate: won=%v err=%v", won, err)
	}
	as := f.auths(id)
	if len(as) != 1 || as[0].ID != nd.AuthorizationID || !as[0].Active {
		t.Errorf("authorizations after rotate: %+v, want only the device's new one, active", as)
	}
}
