package deviceapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// bulk posts ids to POST /api/devices through h.
func bulk(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/api/devices", strings.NewReader(body)).WithContext(ctxT(t))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func idsBody(ids []string) string {
	b, _ := json.Marshal(BulkRequest{DeviceIDs: ids})
	return string(b)
}

// TestBulkRegister: each id's outcome in order; created ids carry a working credential shown once, an existing id
// none; the cap holds (ids past the places left are "limit") and the counter moves by the ids created only; a
// deleted id is registered again; a repeated request answers existing; the new ids are in the registration feed.
func TestBulkRegister(t *testing.T) {
	f := newGatewayFixture(t)
	f.cfg.MaxDevices = 5
	f.reg, f.h = f.instance()
	ctx := ctxT(t)
	gone, old := f.newID("b-gone"), f.newID("b-old")
	for _, id := range []string{gone, old} {
		if _, _, err := f.reg.Register(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.reg.Delete(ctx, gone, false); err != nil {
		t.Fatal(err)
	}
	ids := []string{f.newID("b-1"), old, gone, f.newID("b-2"), f.newID("b-3"), f.newID("b-4"), f.newID("b-5")}
	start := time.Now()
	w := bulk(t, f.h, idsBody(ids))
	if w.Code != 200 {
		t.Fatalf("bulk: %d %s", w.Code, w.Body.String())
	}
	a := decode[BulkAnswer](t, w)
	// 1 registered of 5: 4 places for the first 4 ids; old exists and gives its place back, which the request does
	// not hand on (the ids past the reserved places are refused)
	want := []string{registry.BulkCreated, registry.BulkExisting, registry.BulkCreated, registry.BulkCreated, registry.BulkLimit, registry.BulkLimit, registry.BulkLimit}
	if len(a.Devices) != len(ids) {
		t.Fatalf("%d outcomes for %d ids: %s", len(a.Devices), len(ids), w.Body.String())
	}
	for i, d := range a.Devices {
		if d.DeviceID != ids[i] || d.Outcome != want[i] {
			t.Errorf("outcome %d: %s %s, want %s %s", i, d.DeviceID, d.Outcome, ids[i], want[i])
		}
		switch {
		case d.Outcome == registry.BulkCreated && !strings.HasPrefix(d.Token, registry.CredentialPrefix):
			t.Errorf("%s created without a credential: %+v", d.DeviceID, d)
		case d.Outcome == registry.BulkCreated:
			if _, err := f.reg.Verify(ctx, d.DeviceID, d.Token); err != nil {
				t.Errorf("%s: its credential is refused: %v", d.DeviceID, err)
			}
		case d.Token != "":
			t.Errorf("%s (%s) came with a credential", d.DeviceID, d.Outcome)
		}
	}
	if a.Created != 3 || a.Existing != 1 || a.Limit != 3 || a.Failed != 0 {
		t.Errorf("numbers %+v, want 3 created, 1 existing, 3 limit", a)
	}
	if n, err := f.reg.Count(ctx); err != nil || n != 4 {
		t.Errorf("device counter %d, %v; want 4 (old and the 3 created)", n, err)
	}
	again := decode[BulkAnswer](t, bulk(t, f.h, idsBody(ids[:4])))
	if again.Existing != 4 || again.Created != 0 {
		t.Errorf("the same ids again: %+v, want 4 existing", again)
	}
	if n, _ := f.reg.Count(ctx); n != 4 {
		t.Errorf("device counter after a repeated request %d, want 4", n)
	}
	var fed []string // the feed items of every minute since the request (it may have crossed one)
	var err error
	for m := start.Truncate(time.Minute); !m.After(time.Now()) && err == nil; m = m.Add(time.Minute) {
		var it store.Item
		it, err = f.table.Get(ctx, registry.RegisteredKey(m), false)
		if ss, ok := it["ids"].(*types.AttributeValueMemberSS); ok {
			fed = append(fed, ss.Value...)
		}
	}
	for _, id := range []string{ids[0], gone, ids[3]} {
		if err != nil || !strings.Contains(strings.Join(fed, ","), id) {
			t.Errorf("registration feed %v (%v) lacks %s", fed, err, id)
		}
	}
	// a new device starts silent, in the device list's indexes
	item, _ := f.table.Get(ctx, registry.Key(ids[0]), true)
	if store.Str(item, registry.AttrStatus) != registry.StatusSilent || store.Str(item, registry.AttrShard) != registry.ShardKey(registry.Shard(ids[0])) ||
		store.Str(item, registry.AttrStatusKey) != registry.StatusKey(registry.StatusSilent, registry.Shard(ids[0])) {
		t.Errorf("new item health: %v", item)
	}
}

// TestBulkRaces: racing requests registering the same ids create each id once (one credential each). The counter
// is not checked here: moto's server applies concurrent ADDs without a lock (a lost update now and then), which
// DynamoDB does atomically.
func TestBulkRaces(t *testing.T) {
	f := newGatewayFixture(t)
	ids := []string{f.newID("r-1"), f.newID("r-2"), f.newID("r-3")}
	var wg sync.WaitGroup
	answers := make([]BulkAnswer, 4)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, h := f.instance()
			answers[i] = decode[BulkAnswer](t, bulk(t, h, idsBody(ids)))
		}()
	}
	wg.Wait()
	created := 0
	for _, a := range answers {
		created += a.Created
		if a.Created+a.Existing != len(ids) {
			t.Errorf("answer %+v, want each id created or existing", a)
		}
	}
	if created != len(ids) {
		t.Errorf("%d ids created over 4 racing requests, want %d", created, len(ids))
	}
}

// TestBulkRefusals: a malformed request registers nothing and answers 4xx JSON; only the operator may call it.
func TestBulkRefusals(t *testing.T) {
	f := newGatewayFixture(t)
	many := make([]string, MaxBulk+1)
	for i := range many {
		many[i] = "m-" + strconv.Itoa(i)
	}
	long := make([]string, MaxBulk)
	for i := range long {
		long[i] = strconv.Itoa(i) + strings.Repeat("x", 60)
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"empty body", "", 400}, {"no ids", `{"deviceIds":[]}`, 400}, {"not JSON", `{"deviceIds":`, 400},
		{"unknown field", `{"deviceIds":["a"],"x":1}`, 400}, {"a bad id", `{"deviceIds":["ok-1","no way"]}`, 400},
		{"a repeated id", `{"deviceIds":["d-1","d-1"]}`, 400}, {"too many", idsBody(many), 400},
		{"two objects", `{"deviceIds":["a"]}{}`, 400}, {"too large", `{"deviceIds":["` + strings.Repeat("a", 80<<10) + `"]}`, 413},
	} {
		w := bulk(t, f.h, tc.body)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%s: %d %s, want %d with an error", tc.name, w.Code, w.Body.String(), tc.want)
		}
	}
	// the largest valid request fits the body cap (decoded only: registering 1,000 devices proves nothing more)
	var req BulkRequest
	if err := decodeBulk(httptest.NewRequest("POST", "/api/devices", strings.NewReader(idsBody(long))), &req); err != nil || len(req.DeviceIDs) != MaxBulk {
		t.Errorf("1,000 ids of 63 characters: %d ids, %v", len(req.DeviceIDs), err)
	}
	if n, err := f.reg.Count(ctxT(t)); err != nil || n != 0 {
		t.Errorf("device counter %d, %v; want 0: nothing registered", n, err)
	}
	for _, c := range []api.Caller{{Role: api.RoleProvisioning, DeviceID: "d-1", Generation: -1}, {Role: api.RoleDevice, DeviceID: "d-1"}} {
		h := asCaller(c, NewService(f.reg).Routes())
		if w := bulk(t, h, `{"deviceIds":["d-1"]}`); w.Code != 403 {
			t.Errorf("%s: %d %s, want 403", c.Role, w.Code, w.Body.String())
		}
	}
}
