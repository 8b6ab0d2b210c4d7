package registry

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	put(SeriesKey(id), map[string]types.AttributeValue{AttrSeries: &types.AttributeValueMemberSS{Value: []string{"environment#1", "environment#2", "power#3"}}})
	put(FleetSeriesKey(), map[string]types.AttributeValue{AttrFleetSeries: store.N(5)})
	if w := do(t, f.h, "DELETE", "/api/devices/"+id, ""); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body.String())
	}
	if it, err := f.table.Get(ctxT(t), SeriesKey(id), true); err != nil || it != nil {
		t.Errorf("series item after delete: %v %v, want none", it, err)
	}
	if it, err := f.table.Get(ctxT(t), FleetSeriesKey(), true); err != nil || store.Num(it, AttrFleetSeries) != 2 {
		t.Errorf("fleet count after delete: %v %v, want 2", it, err)
	}
	if w := do(t, f.h, "POST", "/api/devices/"+id, ""); w.Code != http.StatusCreated {
		t.Fatalf("register again: %d %s", w.Code, w.Body.String())
	}
	if it, err := f.table.Get(ctxT(t), SeriesKey(id), true); err != nil || it != nil {
		t.Errorf("series item after registering again: %v %v, want none", it, err)
	}
}
