package storemeter_test

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/internal/storemeter"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopStateTables()
	os.Exit(code)
}

// TestMeterCounts runs each kind of request against the DynamoDB stand-in through a metered client: requests by
// operation, writes, the items each read examined, and capacity (which every request asked for).
func TestMeterCounts(t *testing.T) {
	tb := testenv.StateTable(t, nil)
	var m storemeter.Meter
	db, ctx := dynamodb.New(tb.DB.Options(), m.Option), t.Context()
	for _, k := range []string{"a", "b", "c"} {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tb.Name, Item: store.Key("M", k)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &tb.Name, Key: store.Key("M", "a"),
		UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: store.Item{":one": store.N(1)}}); err != nil {
		t.Fatal(err)
	}
	if got := m.Take(); got.Writes() != 4 || got.Total() != 4 || got.Examined != 0 || got.Capacity <= 0 {
		t.Errorf("writes: %v; want 4 write requests with capacity, nothing examined", got)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tb.Name, Key: store.Key("M", "a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tb.Name, Key: store.Key("M", "none")}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Query(ctx, &dynamodb.QueryInput{TableName: &tb.Name, KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: store.Item{":pk": store.S("M")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		tb.Name: {Keys: []store.Item{store.Key("M", "b"), store.Key("M", "c")}}}}); err != nil {
		t.Fatal(err)
	}
	got := m.Take()
	want := map[string]int{"GetItem": 2, "Query": 1, "BatchGetItem": 1}
	if got.Writes() != 0 || len(got.Requests) != len(want) || got.Examined != 1+3+2 || got.Capacity <= 0 {
		t.Errorf("reads: %v; want %v, 6 items examined, capacity", got, want)
	}
	for op, n := range want {
		if got.Requests[op] != n {
			t.Errorf("%s: %d requests, want %d", op, got.Requests[op], n)
		}
	}
	if again := m.Take(); again.Total() != 0 {
		t.Errorf("after Take: %v, want nothing", again)
	}
}
