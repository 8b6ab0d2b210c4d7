// Package storemeter counts what a DynamoDB client asks of the table: requests by operation, the capacity units
// the table reports (every request asks for ReturnConsumedCapacity TOTAL) and the items a read examined. The fleet
// benchmark reports them per call: moto's time for a Query grows with the table while DynamoDB's does not, so
// these counts, not the stand-in's times, say what a call costs.
package storemeter

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Meter accumulates counts; the zero value is ready. Safe for concurrent requests.
type Meter struct {
	mu       sync.Mutex
	requests map[string]int
	capacity float64
	examined int64
}

// Figures is what a Meter counted.
type Figures struct {
	Requests map[string]int // by operation (Query, PutItem, ...)
	Capacity float64        // consumed capacity units, as the table reports them
	Examined int64          // items a Query or Scan examined, items a batch read returned
}

// Total is the number of requests.
func (f Figures) Total() int {
	n := 0
	for _, v := range f.Requests {
		n += v
	}
	return n
}

// Writes is the number of write requests (a batch write counts as one request).
func (f Figures) Writes() int {
	n := 0
	for op, v := range f.Requests {
		if strings.HasPrefix(op, "Put") || strings.HasPrefix(op, "Update") || strings.HasPrefix(op, "Delete") ||
			strings.HasPrefix(op, "BatchWrite") {
			n += v
		}
	}
	return n
}

func (f Figures) String() string {
	ops := make([]string, 0, len(f.Requests))
	for op, n := range f.Requests {
		ops = append(ops, fmt.Sprintf("%s %d", op, n))
	}
	sort.Strings(ops)
	return fmt.Sprintf("%d requests (%s), %.1f capacity units, %d items examined", f.Total(), strings.Join(ops, ", "),
		f.Capacity, f.Examined)
}

// Take returns the counts so far and starts again from zero.
func (m *Meter) Take() Figures {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := Figures{Requests: m.requests, Capacity: m.capacity, Examined: m.examined}
	if f.Requests == nil {
		f.Requests = map[string]int{}
	}
	m.requests, m.capacity, m.examined = nil, 0, 0
	return f
}

// Option installs the meter on a client: dynamodb.NewFromConfig(cfg, m.Option).
func (m *Meter) Option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("storemeter",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				askCapacity(in.Parameters)
				out, md, err := next.HandleInitialize(ctx, in)
				m.count(middleware.GetOperationName(ctx), out.Result)
				return out, md, err
			}), middleware.After)
	})
}

// askCapacity asks for ReturnConsumedCapacity TOTAL on any operation's input that has the field.
func askCapacity(in any) {
	if f := field(in, "ReturnConsumedCapacity"); f.IsValid() {
		f.Set(reflect.ValueOf(types.ReturnConsumedCapacityTotal))
	}
}

// field is the named field of the struct p points to (the zero Value when p is not such a pointer or lacks it).
func field(p any, name string) reflect.Value {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

func (m *Meter) count(op string, result any) {
	var capacity float64
	var examined int64
	if f := field(result, "ConsumedCapacity"); f.IsValid() {
		all, _ := f.Interface().([]types.ConsumedCapacity) // batch and transaction outputs: one per table
		if one, _ := f.Interface().(*types.ConsumedCapacity); one != nil {
			all = append(all, *one)
		}
		for _, c := range all {
			capacity += aws.ToFloat64(c.CapacityUnits)
		}
	}
	switch v := result.(type) {
	case *dynamodb.GetItemOutput:
		if v.Item != nil {
			examined = 1
		}
	case *dynamodb.QueryOutput:
		examined = int64(v.ScannedCount)
	case *dynamodb.ScanOutput:
		examined = int64(v.ScannedCount)
	case *dynamodb.BatchGetItemOutput:
		for _, items := range v.Responses {
			examined += int64(len(items))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requests == nil {
		m.requests = map[string]int{}
	}
	m.requests[op]++
	m.capacity += capacity
	m.examined += examined
}
