package app

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
)

// The state table survives a restart of the local API: saved at stop, loaded into the next stand-in, every
// attribute type intact.
func TestStateTableSavedAndLoaded(t *testing.T) {
	d := testenv.StartDynamo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	item := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "DEVICE#a"}, "sk": &types.AttributeValueMemberS{Value: "DEVICE"},
		"n": &types.AttributeValueMemberN{Value: "42"}, "ok": &types.AttributeValueMemberBOOL{Value: true},
		"ids": &types.AttributeValueMemberSS{Value: []string{"x", "y"}}, "b": &types.AttributeValueMemberB{Value: []byte{0, 1, 2}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{
			Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}, &types.AttributeValueMemberNULL{Value: true}}}}},
	}
	if _, err := d.Table.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.Table.Name, Item: item}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "table.json")
	if n, err := saveTable(ctx, d.Table.DB, d.Table.Name, path); err != nil || n != 1 {
		t.Fatalf("save: %d items, %v", n, err)
	}
	d.Stop()
	next := testenv.StartDynamo(t) // a new run: an empty stand-in
	if n, err := loadTable(ctx, next.Table.DB, next.Table.Name, path); err != nil || n != 1 {
		t.Fatalf("load: %d items, %v", n, err)
	}
	out, err := next.Table.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &next.Table.Name, Key: map[string]types.AttributeValue{
		"pk": item["pk"], "sk": item["sk"]}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Item, item) {
		t.Errorf("loaded item %#v, want %#v", out.Item, item)
	}
	if n, err := loadTable(ctx, next.Table.DB, next.Table.Name, filepath.Join(t.TempDir(), "none.json")); err != nil || n != 0 {
		t.Errorf("no saved file: %d %v, want nothing loaded and no error", n, err)
	}
}
