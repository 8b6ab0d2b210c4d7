package devstack

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestDynamoStandinQueries checks that the stand-in's Query, which reads only the partition asked for, answers
// what DynamoDB does: the base table's and an index's partitions in sort-key order, a page at a time, and an
// update or deletion seen by the next Query (moto changes items in place); and that its own encoding of item reads
// keeps every attribute type.
func TestDynamoStandinQueries(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := LaunchDynamo(ctx, io.Discard, filepath.Join(root, "template.yaml"), "standin", "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	db := DynamoClient(m.URL, "us-east-1")
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	put := func(id, st string) {
		t.Helper()
		item := map[string]types.AttributeValue{"pk": s("DEVICE#" + id), "sk": s("DEVICE"), "id": s(id)}
		if st != "" {
			item["st"] = s(st)
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("standin"), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	// query reads a partition whole, pages of 3, and answers the ids (or sort keys) in order
	query := func(index, pk, value string) []string {
		t.Helper()
		in := &dynamodb.QueryInput{TableName: aws.String("standin"), Limit: aws.Int32(3),
			KeyConditionExpression: aws.String("#k = :v"), ExpressionAttributeNames: map[string]string{"#k": pk},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": s(value)}}
		if index != "" {
			in.IndexName = aws.String(index)
		}
		var got []string
		for range 20 {
			out, err := db.Query(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range out.Items {
				got = append(got, it["sk"].(*types.AttributeValueMemberS).Value+"/"+it["id"].(*types.AttributeValueMemberS).Value)
			}
			if in.ExclusiveStartKey = out.LastEvaluatedKey; len(in.ExclusiveStartKey) == 0 {
				return got
			}
		}
		t.Fatal("more than 20 pages")
		return nil
	}
	ids := func(prefix string, n ...int) []string {
		var out []string
		for _, i := range n {
			out = append(out, fmt.Sprintf("DEVICE/%s%02d", prefix, i))
		}
		return out
	}
	for _, i := range []int{7, 3, 9, 1, 5, 8, 2} {
		st := "online#0"
		if i%2 == 0 {
			st = "silent#0"
		}
		put(fmt.Sprintf("d%02d", i), st)
	}
	put("x01", "")
	check := func(step, index, pk, value string, want []string) {
		t.Helper()
		if got := query(index, pk, value); !slices.Equal(got, want) {
			t.Errorf("%s: Query %s %s = %s: got %v, want %v", step, index, pk, value, got, want)
		}
	}
	check("put", "", "pk", "DEVICE#d03", ids("d", 3))
	check("put", "byStatus", "st", "online#0", ids("d", 1, 3, 5, 7, 9))
	check("put", "byStatus", "st", "silent#0", ids("d", 2, 8))
	put("d03", "silent#0")
	put("d04", "online#0")
	check("moved", "byStatus", "st", "online#0", ids("d", 1, 4, 5, 7, 9))
	check("moved", "byStatus", "st", "silent#0", ids("d", 2, 3, 8))
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("standin"),
		Key: map[string]types.AttributeValue{"pk": s("DEVICE#d05"), "sk": s("DEVICE")}}); err != nil {
		t.Fatal(err)
	}
	check("deleted", "byStatus", "st", "online#0", ids("d", 1, 4, 7, 9))
	check("deleted", "", "pk", "DEVICE#d05", nil)
	check("no such partition", "byStatus", "st", "late#0", nil)

	typed := map[string]types.AttributeValue{"pk": s("TYPED"), "sk": s("TYPED"), "s": s("é\"<"),
		"n": &types.AttributeValueMemberN{Value: "-12.5"}, "b": &types.AttributeValueMemberB{Value: []byte{0, 1, 254, 255}},
		"ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}}, "bs": &types.AttributeValueMemberBS{Value: [][]byte{{7}}},
		"bool": &types.AttributeValueMemberBOOL{Value: true}, "null": &types.AttributeValueMemberNULL{Value: true},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("x")}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberN{Value: "1"}}}}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("standin"), Item: typed}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("standin"), Key: map[string]types.AttributeValue{
		"pk": s("TYPED"), "sk": s("TYPED")}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Item, typed) {
		t.Errorf("GetItem: got %#v, want %#v", got.Item, typed)
	}
}
