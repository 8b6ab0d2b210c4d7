package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// The table the stand-in creates has the template's keys and TTL.
func TestTableFromTemplate(t *testing.T) {
	d := testenv.StartDynamo(t)
	ctx := context.Background()
	desc, err := d.Table.DB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.Table.Name})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range desc.Table.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	if got, want := fmt.Sprint(keys), "[pk:HASH sk:RANGE]"; got != want {
		t.Errorf("key schema = %s, want %s", got, want)
	}
	ttl, err := d.Table.DB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &d.Table.Name})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(ttl.TimeToLiveDescription.AttributeName); got != store.ExpiresAt {
		t.Errorf("TTL attribute = %q, want %q", got, store.ExpiresAt)
	}
}

// A lost conditional write carries the item that won; an expired item reads as absent; a stopped endpoint is
// StoreUnavailable (503 with Retry-After).
func TestConditionsExpiryAndOutage(t *testing.T) {
	d := testenv.StartDynamo(t)
	tb := d.Table
	ctx := context.Background()
	put := func(it store.Item) error {
		_, err := tb.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tb.Name, Item: it,
			ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
		return store.Classify(err)
	}
	first := store.Key("T#1", "T")
	first["v"] = store.S("winner")
	if err := put(first); err != nil {
		t.Fatalf("first put: %v", err)
	}
	second := store.Key("T#1", "T")
	second["v"] = store.S("loser")
	cf := store.IsConditionFailed(put(second))
	if cf == nil {
		t.Fatal("second put of the same key succeeded, want a failed condition")
	}
	if got := store.Str(cf.Item, "v"); got != "winner" {
		t.Errorf("failed condition's item v = %q, want winner", got)
	}

	now := time.Now()
	for _, tc := range []struct {
		name    string
		expires time.Duration
		present bool
	}{{"live", time.Hour, true}, {"expired", -time.Minute, false}} {
		it := store.Key("E#"+tc.name, "E")
		it[store.ExpiresAt] = store.Expiry(now, tc.expires)
		if _, err := tb.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tb.Name, Item: it}); err != nil {
			t.Fatal(err)
		}
		got, err := tb.Get(ctx, store.Key("E#"+tc.name, "E"), true)
		if err != nil {
			t.Fatal(err)
		}
		if (got != nil) != tc.present {
			t.Errorf("%s item: present = %v, want %v", tc.name, got != nil, tc.present)
		}
	}

	d.Stop()
	_, err := tb.Get(ctx, store.Key("T#1", "T"), false)
	if code := api.CodeOf(err); code != api.StoreUnavailable {
		t.Fatalf("read with the store stopped: code %q (%v), want %q", code, err, api.StoreUnavailable)
	}
	if got := api.StoreUnavailable.Status(); got != http.StatusServiceUnavailable {
		t.Errorf("StoreUnavailable status = %d, want 503", got)
	}
}

// Put and Update write under a condition whose #names need no map: a lost Put carries the item as it was, a lost
// Update changes nothing; a write without a condition always applies.
func TestPutAndUpdate(t *testing.T) {
	tb, ctx := testenv.StartDynamo(t).Table, context.Background()
	if got := store.Names("SET #a = :a", "#b > :b AND #a < :c", "pk = :pk"); fmt.Sprint(got) != "map[#a:a #b:b]" {
		t.Errorf("Names = %v, want #a and #b", got)
	}
	if got := store.Names("ADD n :k"); got != nil {
		t.Errorf("Names without a #name = %v, want nil (DynamoDB refuses an empty map)", got)
	}
	it := store.Key("P#1", "P")
	it["job"] = store.S("a")
	if err := tb.Put(ctx, it, "", nil); err != nil {
		t.Fatal(err)
	}
	it["job"] = store.S("b")
	cf := store.IsConditionFailed(tb.Put(ctx, it, "#job = :old", store.Item{":old": store.S("x")}))
	if cf == nil || store.Str(cf.Item, "job") != "a" {
		t.Fatalf("put under a false condition: %+v, want a failed condition holding job a", cf)
	}
	if err := tb.Put(ctx, it, "#job = :old", store.Item{":old": store.S("a")}); err != nil {
		t.Fatalf("put under a true condition: %v", err)
	}
	key := store.Key("P#1", "P")
	for _, tc := range []struct {
		cond string
		vals store.Item
		lost bool
	}{
		{"#job = :j", store.Item{":one": store.N(1), ":j": store.S("b")}, false},
		{"#job <> :j", store.Item{":one": store.N(1), ":j": store.S("b")}, true},
		{"", store.Item{":one": store.N(1)}, false},
	} {
		err := tb.Update(ctx, key, "ADD #n :one", tc.cond, tc.vals)
		if lost := store.IsConditionFailed(err) != nil; lost != tc.lost || (err != nil && !lost) {
			t.Errorf("update under %q: %v, want lost %v", tc.cond, err, tc.lost)
		}
	}
	if got, err := tb.Get(ctx, key, true); err != nil || store.Num(got, "n") != 2 || store.Str(got, "job") != "b" {
		t.Errorf("item %v (%v), want job b and n 2", got, err)
	}
}

// Throttling and 5xx answers are StoreUnavailable; a refused request (a missing table) is Internal. The endpoint
// is an httptest server answering DynamoDB's JSON errors: neither moto nor DynamoDB can be made to throttle.
func TestClassifyAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		typ    string
		want   api.Code
	}{
		{"throttled", 400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", api.StoreUnavailable},
		{"request limit", 400, "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded", api.StoreUnavailable},
		{"server error", 500, "com.amazonaws.dynamodb.v20120810#InternalServerError", api.StoreUnavailable},
		{"no table", 400, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", api.Internal},
		{"denied", 400, "com.amazon.coral.service#AccessDeniedException", api.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"__type":%q,"message":"no"}`, tc.typ)
			}))
			defer srv.Close()
			tb := &store.Table{DB: dynamodb.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
				Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1}), Name: "t"}
			_, err := tb.Get(context.Background(), store.Key("a", "b"), false)
			if got := api.CodeOf(err); got != tc.want {
				t.Errorf("code = %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := api.CodeOf(store.Classify(fmt.Errorf("x: %w", ctx.Err()))); got != api.Timeout {
		t.Errorf("cancelled call: code %q, want %q", got, api.Timeout)
	}
	if store.Classify(nil) != nil || store.IsConditionFailed(errors.New("x")) != nil {
		t.Error("nil or a plain error classified as something")
	}
}
