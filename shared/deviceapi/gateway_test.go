package deviceapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// newGatewayFixture is newFixture in gateway mode (devices get hashed device credentials).
func newGatewayFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.cfg.DeviceWrites = config.WritesGateway
	f.cfg.BucketDownsampled = f.srv.NewBucket(t, "ds")
	f.reg, f.h = f.instance()
	return f
}

// tableText is every string value stored in the state table (what a reader of the table would see).
func (f *fixture) tableText() string {
	f.t.Helper()
	out, err := f.table.DB.Scan(ctxT(f.t), &dynamodb.ScanInput{TableName: &f.table.Name})
	if err != nil {
		f.t.Fatalf("scanning the state table: %v", err)
	}
	var b strings.Builder
	for _, it := range out.Items {
		for _, v := range it {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				b.WriteString(s.Value + "\n")
			}
		}
	}
	return b.String()
}

// The gateway mode end to end on the registry: the credential is shown to its creator, kept only as a hash,
// echoed to the device itself, refused by InfluxDB, and stops working on rotate and delete.
func TestGatewayCredentialLifecycle(t *testing.T) {
	f := newGatewayFixture(t)
	id := f.newID("gw")
	c := f.expect(f.h, "POST", "/api/devices/"+id, http.StatusCreated)
	cred := c.InfluxToken
	if got, ok := registry.CredentialDeviceID(cred); !ok || got != id {
		t.Fatalf("credential %.12q… does not name %s", cred, id)
	}
	if c.InfluxURL != "https://example.com" || c.WriteEndpoint != "https://example.com" {
		t.Errorf("influx_url %q write_endpoint %q, want the API's base URL", c.InfluxURL, c.WriteEndpoint)
	}
	if strings.Contains(f.tableText(), cred) {
		t.Error("the state table holds the credential itself")
	}
	if !strings.Contains(f.tableText(), sha256Hex(cred)) {
		t.Error("the state table lacks the credential's hash")
	}
	// InfluxDB refuses it: write, query and delete
	if s := f.writeAs(cred, f.cfg.Bucket, id, 1); s != http.StatusUnauthorized {
		t.Errorf("InfluxDB write with the credential: got %d, want 401", s)
	}
	if _, s := f.readAs(cred, f.cfg.Bucket, id); s != http.StatusUnauthorized {
		t.Errorf("InfluxDB query with the credential: got %d, want 401", s)
	}
	pred, _ := influx.Predicate("clientId", id)
	if err := f.deviceClient(cred).Delete(ctxT(t), f.cfg.Bucket, influx.AllTimeStart, influx.AllTimeStop, pred); influx.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("InfluxDB delete with the credential: got %v, want 401", err)
	}
	d, err := f.reg.Authenticate(ctxT(t), cred)
	if err != nil || d.ID != id || !d.Token.Empty() {
		t.Fatalf("Authenticate: got %+v %v, want device %s without a secret", d.ID, err, id)
	}
	// the operator sees the record, never the credential (only its hash exists)
	if w := do(t, f.h, "GET", "/api/env/"+id, ""); w.Code != http.StatusOK || decode[EnvConfig](t, w).InfluxToken != "" {
		t.Errorf("operator env: got %d %s, want 200 without a credential", w.Code, w.Body.String())
	}
	if w := do(t, f.h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusOK || decode[EnvConfig](t, w).InfluxToken != "" {
		t.Errorf("operator re-register: got %d %s, want 200 without a credential", w.Code, w.Body.String())
	}
	// the device's own env call echoes what it presented, after checking it
	dev := asCaller(api.Caller{Role: api.RoleDevice, DeviceID: id, CredentialID: d.AuthorizationID, Generation: d.Generation}, NewService(f.reg).Routes())
	if w := do(t, dev, "GET", "/api/env/"+id, "", "Authorization", "Bearer "+cred); w.Code != http.StatusOK || decode[EnvConfig](t, w).InfluxToken != cred {
		t.Errorf("device env: got %d %s, want 200 with its credential", w.Code, w.Body.String())
	}
	if w := do(t, dev, "GET", "/api/env/"+id, "", "Authorization", "Bearer "+cred+"x"); w.Code != http.StatusUnauthorized {
		t.Errorf("device env with another secret: got %d %s, want 401", w.Code, w.Body.String())
	}
	for _, bad := range []string{cred + "0", strings.TrimSuffix(cred, cred[len(cred)-1:]) + "x", "Token " + cred, registry.CredentialPrefix + "nope_" + strings.Repeat("a", 64)} {
		if _, err := f.reg.Authenticate(ctxT(t), bad); !api.IsCode(err, api.Unauthorized) {
			t.Errorf("Authenticate(altered credential): got %v, want unauthorized", err)
		}
	}
	// rotate: a new credential for the rotating caller; the old one opens nothing
	cred2 := f.expect(f.h, "POST", "/api/devices/"+id+"/rotate", http.StatusOK).InfluxToken
	if cred2 == "" || cred2 == cred {
		t.Fatalf("rotate gave no new credential")
	}
	if _, err := f.reg.Authenticate(ctxT(t), cred); !api.IsCode(err, api.Unauthorized) {
		t.Errorf("Authenticate(rotated-out credential): got %v, want unauthorized", err)
	}
	if w := do(t, dev, "GET", "/api/env/"+id, "", "Authorization", "Bearer "+cred); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), cred2) {
		t.Errorf("device env with the rotated-out credential: got %d %s, want 401", w.Code, w.Body.String())
	}
	if as := f.auths(id); len(as) != 0 {
		t.Errorf("after rotate: %d InfluxDB authorizations, want none (gateway credentials are not InfluxDB's)", len(as))
	}
	// delete: nothing authenticates any more
	if w := do(t, f.h, "DELETE", "/api/devices/"+id, ""); w.Code != http.StatusNoContent {
		t.Fatalf("delete: got %d %s", w.Code, w.Body.String())
	}
	if _, err := f.reg.Authenticate(ctxT(t), cred2); !api.IsCode(err, api.Unauthorized) {
		t.Errorf("Authenticate after delete: got %v, want unauthorized", err)
	}
	if as := f.auths(id); len(as) != 0 {
		t.Errorf("after delete: %d authorizations, want 0", len(as))
	}
}

// With the state table's endpoint stopped, every registry route answers 503 JSON with Retry-After and changes
// nothing: no InfluxDB authorization is created or revoked; the gateway's check is StoreUnavailable.
func TestStoreDownAnswers503(t *testing.T) {
	for _, gateway := range []bool{false, true} {
		name := "direct"
		if gateway {
			name = "gateway"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			d := testenv.StartDynamo(t)
			f.table = d.Table
			if gateway {
				f.cfg.DeviceWrites = config.WritesGateway
			}
			f.reg, f.h = f.instance()
			id := f.newID("down")
			cred := f.expect(f.h, "POST", "/api/devices/"+id, http.StatusCreated).InfluxToken
			before := f.auths(id)
			d.Stop()
			newID := f.newID("down-new")
			for _, rq := range [][3]string{
				{"GET", "/api/env/" + id, ""}, {"GET", "/api/env/" + newID, ""},
				{"POST", "/api/devices/" + newID, ""}, {"POST", "/api/devices/" + id + "/rotate", ""},
				{"DELETE", "/api/devices/" + id, ""}, {"DELETE", "/api/devices/" + newID, "data=true"},
			} {
				w := do(t, f.h, rq[0], rq[1], rq[2])
				if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
					!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
					t.Errorf("%s %s: got %d %q %s, want 503 JSON with Retry-After", rq[0], rq[1], w.Code, w.Header(), w.Body.String())
				}
			}
			if gateway {
				if _, err := f.reg.Authenticate(ctxT(t), cred); !api.IsCode(err, api.StoreUnavailable) {
					t.Errorf("Authenticate with the store down: got %v, want store_unavailable", err)
				}
			}
			after := f.auths(id)
			if len(after) != len(before) || (len(after) == 1 && after[0].ID != before[0].ID) {
				t.Errorf("authorizations changed: before %d, after %d", len(before), len(after))
			}
			if n := len(f.auths(newID)); n != 0 {
				t.Errorf("new id: %d authorizations left, want 0", n)
			}
		})
	}
}

// DELETE ?data=true removes the device's raw points and its hourly aggregates (which would otherwise come back
// on the dashboard after a re-registration), in every measurement (a SchemaExtension one's too), and nothing of
// another device.
func TestDeleteWithDataRemovesHourlyAggregates(t *testing.T) {
	f := newGatewayFixture(t)
	drop, keep := f.newID("drop"), f.newID("keep")
	stop := time.Now().UTC().Truncate(time.Hour)
	start := stop.Add(-3 * time.Hour)
	var lp strings.Builder
	for _, id := range []string{drop, keep} {
		if w := do(t, f.h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusCreated {
			t.Fatalf("register %s: %d", id, w.Code)
		}
		for m := start; m.Before(stop); m = m.Add(10 * time.Minute) {
			lp.WriteString(schema.Measurement + ",clientId=" + id + " Temperature=21.5,CO2=400i " + strconv.FormatInt(m.UnixNano(), 10) + "\n")
			lp.WriteString("power,Room=lab,clientId=" + id + " Watts=12.5 " + strconv.FormatInt(m.UnixNano(), 10) + "\n")
		}
	}
	if err := f.admin.WriteLines(ctxT(t), f.cfg.Bucket, []byte(lp.String())); err != nil {
		t.Fatal(err)
	}
	if err := setup.Downsample(ctxT(t), f.admin, f.cfg.Bucket, f.cfg.BucketDownsampled, start, stop); err != nil {
		t.Fatal(err)
	}
	count := func(bucket, id string) int {
		t.Helper()
		n := 0
		err := f.admin.QueryRows(ctxT(t), `from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r.clientId == id)`,
			influx.Extern{"b": bucket, "id": id}, func(map[string]any) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ext := fmt.Sprintf("power_1h,agg=mean,clientId=%s Watts=12.5 %d\n", drop, start.UnixNano())
	if err := f.admin.WriteLines(ctxT(t), f.cfg.BucketDownsampled, []byte(ext)); err != nil {
		t.Fatal(err)
	}
	if count(f.cfg.BucketDownsampled, drop) == 0 || count(f.cfg.Bucket, drop) == 0 {
		t.Fatal("no data or hourly aggregates to delete")
	}
	keepRaw, keepDs := count(f.cfg.Bucket, keep), count(f.cfg.BucketDownsampled, keep)
	if w := do(t, f.h, "DELETE", "/api/devices/"+drop, "data=true"); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body.String())
	}
	if raw, ds := count(f.cfg.Bucket, drop), count(f.cfg.BucketDownsampled, drop); raw != 0 || ds != 0 {
		t.Errorf("after delete ?data=true: %d raw points and %d hourly aggregates left, want 0 and 0", raw, ds)
	}
	if raw, ds := count(f.cfg.Bucket, keep), count(f.cfg.BucketDownsampled, keep); raw != keepRaw || ds != keepDs {
		t.Errorf("the other device lost data: raw %d→%d, hourly %d→%d", keepRaw, raw, keepDs, ds)
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
