package storemeter

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestAskCapacity: every operation input that can report capacity asks for TOTAL; anything else is left alone.
func TestAskCapacity(t *testing.T) {
	for _, in := range []any{&dynamodb.GetItemInput{}, &dynamodb.PutItemInput{}, &dynamodb.UpdateItemInput{},
		&dynamodb.DeleteItemInput{}, &dynamodb.QueryInput{}, &dynamodb.ScanInput{}, &dynamodb.BatchGetItemInput{},
		&dynamodb.BatchWriteItemInput{}, &dynamodb.TransactWriteItemsInput{}} {
		askCapacity(in)
		if got := reflect.ValueOf(in).Elem().FieldByName("ReturnConsumedCapacity").Interface(); got != types.ReturnConsumedCapacityTotal {
			t.Errorf("%T: ReturnConsumedCapacity %q, want TOTAL", in, got)
		}
	}
	for _, in := range []any{nil, "x", (*dynamodb.GetItemInput)(nil), &dynamodb.DescribeTableInput{}, dynamodb.GetItemInput{}} {
		askCapacity(in) // no panic, nothing to set
	}
}
