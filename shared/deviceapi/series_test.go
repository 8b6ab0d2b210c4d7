package deviceapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// TestDeleteForgetsSeries: deleting a device removes the tag sets the write gateway's series budget kept for it
// and gives their number back to the fleet's count, so a device registered again under the id starts with none.
func TestDeleteForgetsSeries(t *testing.T) {
	f := newFixture(t)
	id := f.newID("series")
	if w := do(t, f.h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", w.Code, w.Body.String())
	}
	put := func(key store.Item, attrs map[string]types.AttributeValue) {
		t.Helper()
		it := store.Item{}
		for k, v := range key {
			it[k] = v
		}
		for k, v := range attrs {
			it[k] = v
		}
		if _, err := f.table.DB.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String(f.table.Name), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	put(registry.SeriesKey(id), map[string]types.AttributeValue{registry.AttrSeries: &types.AttributeValueMemberSS{Value: []string{"environment#1", "environment#2", "power#3"}}})
	put(registry.FleetSeriesKey(), map[string]types.AttributeValue{registry.AttrFleetSeries: store.N(5)})
	if w := do(t, f.h, "DELETE", "/api/devices/"+id, ""); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body.String())
	}
	if it, err := f.table.Get(ctxT(t), registry.SeriesKey(id), true); err != nil || it != nil {
		t.Errorf("series item after delete: %v %v, want none", it, err)
	}
	if it, err := f.table.Get(ctxT(t), registry.FleetSeriesKey(), true); err != nil || store.Num(it, registry.AttrFleetSeries) != 2 {
		t.Errorf("fleet count after delete: %v %v, want 2", it, err)
	}
	if w := do(t, f.h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusCreated {
		t.Fatalf("register again: %d %s", w.Code, w.Body.String())
	}
	if it, err := f.table.Get(ctxT(t), registry.SeriesKey(id), true); err != nil || it != nil {
		t.Errorf("series item after registering again: %v %v, want none", it, err)
	}
}

// TestSecondDataPass: a delete with data queues its second pass (here captured, in production an SQS message with
// a delay); points written after the first pass (what a gateway instance still caching the old credential lets
// through) are gone after the second; until then the id cannot be registered again, and a pass arriving after a
// new registration (a lost or late message) deletes nothing of the new device.
func TestSecondDataPass(t *testing.T) {
	f := newFixture(t)
	id := f.newID("purge")
	type task struct {
		id  string
		gen int64
	}
	var queued []task
	f.reg.SchedulePurge = func(_ context.Context, id string, gen int64) error {
		queued = append(queued, task{id, gen})
		return nil
	}
	f.reg.PurgeDelay = time.Minute
	h := asOperator(NewService(f.reg).Routes())
	write := func(m string) {
		t.Helper()
		lp := fmt.Sprintf("environment,clientId=%s Temperature=1 %d\npower,clientId=%s Watts=2 %d\n", id, time.Now().Add(-time.Minute).UnixNano(), id, time.Now().Add(-time.Minute).UnixNano())
		if err := f.admin.WriteLines(ctxT(t), f.cfg.Bucket, []byte(lp)); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	count := func() int {
		t.Helper()
		n := 0
		err := f.admin.QueryRows(ctxT(t), `from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r.clientId == id)`,
			influx.Extern{"b": f.cfg.Bucket, "id": id}, func(map[string]any) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if w := do(t, h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusCreated {
		t.Fatalf("register: %d", w.Code)
	}
	write("before the delete")
	if w := do(t, h, "DELETE", "/api/devices/"+id, "data=true"); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body.String())
	}
	if len(queued) != 1 || queued[0].id != id {
		t.Fatalf("queued passes %v, want one for %s", queued, id)
	}
	write("late, with the old credential still cached")
	if n := count(); n != 2 {
		t.Fatalf("%d rows after the late write, want 2", n)
	}
	if w := do(t, h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "register it again after") {
		t.Errorf("registering again before the second pass: %d %s, want 409", w.Code, w.Body.String())
	}
	if err := f.reg.PurgeLate(ctxT(t), id, queued[0].gen); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Errorf("%d rows after the second pass, want 0", n)
	}
	if w := do(t, h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusCreated {
		t.Fatalf("registering again after the second pass: %d %s", w.Code, w.Body.String())
	}
	write("the new device's")
	if err := f.reg.PurgeLate(ctxT(t), id, queued[0].gen); err != nil { // delivered again, late
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Errorf("the new device has %d rows after a stale pass, want 2 (untouched)", n)
	}
}
