// Package store is the control-plane table client: one DynamoDB table (template.yaml's StateTable, named by
// STATE_TABLE) built once per cold start, its key attributes, TTL helpers and the classification of its errors.
// The items themselves belong to their domain packages (registry, backfill); README.md has the key design.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Attribute names every item has (the table's keys) and the TTL attribute.
const (
	PK        = "pk"
	SK        = "sk"
	ExpiresAt = "expiresAt" // N, epoch seconds; DynamoDB deletes expired items only within about two days
	// EnvTable names the variable holding the table's name.
	EnvTable = "STATE_TABLE"
)

// Item is one table item.
type Item = map[string]types.AttributeValue

// Table is the control-plane table: a DynamoDB client and the table's name.
type Table struct {
	DB   *dynamodb.Client
	Name string
}

// New returns the table name on a client built from cfg (the SDK reads AWS_ENDPOINT_URL_DYNAMODB into it).
func New(cfg aws.Config, name string) *Table {
	return &Table{DB: dynamodb.NewFromConfig(cfg), Name: name}
}

var (
	defaultOnce  sync.Once
	defaultTable *Table
	defaultErr   error
)

// FromEnv builds the table client once per process from STATE_TABLE and the default AWS configuration (region,
// credentials, AWS_ENDPOINT_URL_DYNAMODB for a local endpoint). Call it at cold start.
func FromEnv(ctx context.Context, getenv func(string) string) (*Table, error) {
	defaultOnce.Do(func() {
		name := getenv(EnvTable)
		if name == "" {
			defaultErr = errors.New("store: " + EnvTable + " is not set (the template's StateTable)")
			return
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			defaultErr = fmt.Errorf("store: loading AWS configuration: %w", err)
			return
		}
		defaultTable = New(cfg, name)
	})
	return defaultTable, defaultErr
}

// Key is the primary key of an item.
func Key(pk, sk string) Item {
	return Item{PK: S(pk), SK: S(sk)}
}

// S and N build attribute values.
func S(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func N(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// Str reads a string attribute ("" when absent or of another type).
func Str(it Item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// Num reads a number attribute as an int64 (0 when absent, of another type or not an integer).
func Num(it Item, name string) int64 {
	if v, ok := it[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// Expiry is the expiresAt value for an item that lives ttl from now.
func Expiry(now time.Time, ttl time.Duration) types.AttributeValue {
	return N(now.Add(ttl).Unix())
}

// Expired reports whether the item's expiresAt has passed: such an item is treated as absent (DynamoDB deletes
// expired items late). An item without expiresAt never expires.
func Expired(it Item, now time.Time) bool {
	if _, ok := it[ExpiresAt]; !ok {
		return false
	}
	return Num(it, ExpiresAt) <= now.Unix()
}

// Get reads one item (nil when absent or expired); consistent asks for a strongly consistent read.
func (t *Table) Get(ctx context.Context, key Item, consistent bool) (Item, error) {
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.Name, Key: key, ConsistentRead: aws.Bool(consistent)})
	if err != nil {
		return nil, Classify(err)
	}
	if len(out.Item) == 0 || Expired(out.Item, time.Now()) {
		return nil, nil
	}
	return out.Item, nil
}

var nameRef = regexp.MustCompile(`#\w+`)

// Names maps each #a in the expressions to attribute a (nil for none: DynamoDB refuses an empty map).
func Names(exprs ...string) map[string]string {
	var names map[string]string
	for _, e := range exprs {
		for _, n := range nameRef.FindAllString(e, -1) {
			if names == nil {
				names = map[string]string{}
			}
			names[n] = n[1:]
		}
	}
	return names
}

// Put writes it if cond holds ("" for always; #a in cond names attribute a). A lost condition is *ConditionFailed
// with the item as it was.
func (t *Table) Put(ctx context.Context, it Item, cond string, vals Item) error {
	in := &dynamodb.PutItemInput{TableName: &t.Name, Item: it}
	if cond != "" {
		in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues = &cond, Names(cond), vals
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	_, err := t.DB.PutItem(ctx, in)
	return Classify(err)
}

// Update applies expr to the item at key if cond holds ("" for always; #a names attribute a). A lost condition is
// *ConditionFailed without the item: callers that need it read again.
func (t *Table) Update(ctx context.Context, key Item, expr, cond string, vals Item) error {
	in := &dynamodb.UpdateItemInput{TableName: &t.Name, Key: key, UpdateExpression: &expr,
		ExpressionAttributeNames: Names(expr, cond), ExpressionAttributeValues: vals}
	if cond != "" {
		in.ConditionExpression = &cond
	}
	_, err := t.DB.UpdateItem(ctx, in)
	return Classify(err)
}

// BatchGet reads the items of keys (any number) that exist and have not expired, retrying unprocessed keys a
// bounded number of times.
func (t *Table) BatchGet(ctx context.Context, keys []Item, consistent bool) ([]Item, error) {
	var out []Item
	for start := 0; start < len(keys); start += 100 { // BatchGetItem's limit
		req := map[string]types.KeysAndAttributes{t.Name: {Keys: keys[start:min(len(keys), start+100)],
			ConsistentRead: aws.Bool(consistent)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == 8 {
				return nil, api.Errorf(api.StoreUnavailable, "the state table kept some keys unprocessed")
			}
			res, err := t.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, Classify(err)
			}
			for _, it := range res.Responses[t.Name] {
				if !Expired(it, time.Now()) {
					out = append(out, it)
				}
			}
			if req = res.UnprocessedKeys; len(req) > 0 {
				select {
				case <-ctx.Done():
					return nil, api.Wrap(api.Timeout, ctx.Err(), "reading the state table")
				case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
				}
			}
		}
	}
	return out, nil
}

// Partition reads every live item under pk, keyed by sort key: one Query, whose capacity is that of the items' total
// size, so items read together cost no more than the largest alone while they stay under 4 KB.
func (t *Table) Partition(ctx context.Context, pk string, consistent bool) (map[string]Item, error) {
	out, err := t.DB.Query(ctx, &dynamodb.QueryInput{TableName: &t.Name, ConsistentRead: aws.Bool(consistent),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": S(pk)}})
	if err != nil {
		return nil, Classify(err)
	}
	items := make(map[string]Item, len(out.Items))
	now := time.Now()
	for _, it := range out.Items {
		if !Expired(it, now) {
			items[Str(it, SK)] = it
		}
	}
	return items, nil
}

// ConditionFailed is a conditional write that lost: Item is the item as it was (ReturnValuesOnConditionCheckFailure
// ALL_OLD; nil when there was none), so the loser can answer with the winner's state without reading again.
type ConditionFailed struct {
	Item Item
}

func (e *ConditionFailed) Error() string { return "store: the condition of the write failed" }

// IsConditionFailed returns the failed condition's item holder, or nil when err is not a failed condition.
func IsConditionFailed(err error) *ConditionFailed {
	var cf *ConditionFailed
	if errors.As(err, &cf) {
		return cf
	}
	return nil
}

// throttled are the DynamoDB error codes that mean "too much right now": retry later.
var throttled = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"TransactionConflictException":           true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
}

// Classify maps a failed table call to the project's error: a failed condition becomes *ConditionFailed (with
// the item it returned); throttling, a 5xx and no answer at all (refused, reset, EOF) become
// api.StoreUnavailable (503 with Retry-After, nothing changed); the caller's deadline becomes api.Timeout; the
// rest (a missing table, a refused permission: deployment faults) api.Internal. nil stays nil.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	if cf := IsConditionFailed(err); cf != nil {
		return cf
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &ConditionFailed{Item: ccf.Item}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return api.Wrap(api.Timeout, err, "the device store did not answer in time")
	}
	unavailable := api.Wrap(api.StoreUnavailable, err, "the device store is unavailable")
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && throttled[apiErr.ErrorCode()] {
		return unavailable
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= http.StatusInternalServerError {
		return unavailable
	}
	if apiErr != nil || (re != nil && re.HTTPStatusCode() != 0) {
		return api.Wrap(api.Internal, err, "device store request refused")
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return unavailable
	}
	var rex interface{ RetryableError() bool }
	if errors.As(err, &rex) && rex.RetryableError() {
		return unavailable
	}
	return api.Wrap(api.Internal, err, "device store request failed")
}
