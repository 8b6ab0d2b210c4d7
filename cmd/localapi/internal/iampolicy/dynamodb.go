package iampolicy

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Table is what the stand-in needs of a table's definition: the partition key attribute of the table and of each
// index (the values of dynamodb:LeadingKeys).
type Table struct {
	Hash    string
	Indexes map[string]string // index name → its partition key attribute
}

// request is the part of a DynamoDB JSON request the condition keys are computed from.
type request struct {
	TableName                 string
	IndexName                 string
	Key, Item                 map[string]map[string]any
	UpdateExpression          string
	ConditionExpression       string
	KeyConditionExpression    string
	ProjectionExpression      string
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues map[string]map[string]any
	RequestItems              map[string]json.RawMessage
	TransactItems             []map[string]request

	keys, items []map[string]map[string]any // a batch's, for one table
}

// Accesses describes a call (X-Amz-Target's operation and its body) as the accesses IAM authorizes: one per
// table of a batch, one per item of a transaction (which IAM checks as the item's own action). arn names a table.
func Accesses(op string, body []byte, tables map[string]Table, arn func(table string) string) ([]Access, error) {
	var r request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: body: %w", op, err)
	}
	switch op {
	case "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan":
		return []Access{r.access(op, tables, arn)}, nil
	case "BatchGetItem", "BatchWriteItem":
		var out []Access
		for _, name := range slices.Sorted(maps.Keys(r.RequestItems)) {
			b, err := batch(op, name, r.RequestItems[name])
			if err != nil {
				return nil, err
			}
			out = append(out, b.access(op, tables, arn))
		}
		return out, nil
	case "TransactGetItems", "TransactWriteItems":
		var out []Access
		for _, it := range r.TransactItems {
			for kind, inner := range it {
				action := map[string]string{"Get": "GetItem", "Put": "PutItem", "Update": "UpdateItem",
					"Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}[kind]
				if action == "" {
					return nil, fmt.Errorf("%s: item kind %s", op, kind)
				}
				out = append(out, inner.access(action, tables, arn))
			}
		}
		return out, nil
	case "DescribeTable", "DescribeTimeToLive", "CreateTable", "DeleteTable", "UpdateTable", "UpdateTimeToLive":
		return []Access{{Action: "dynamodb:" + op, Resource: arn(r.TableName)}}, nil
	case "ListTables":
		return []Access{{Action: "dynamodb:" + op, Resource: "*"}}, nil
	}
	return nil, fmt.Errorf("operation %q is not known to the IAM stand-in", op)
}

// batch turns one table's entry of a batch into a request whose keys and items are those of all its entries.
func batch(op, table string, raw json.RawMessage) (request, error) {
	r := request{TableName: table}
	var gets struct {
		Keys                     []map[string]map[string]any
		ProjectionExpression     string
		ExpressionAttributeNames map[string]string
	}
	var writes []struct {
		PutRequest    *struct{ Item map[string]map[string]any }
		DeleteRequest *struct{ Key map[string]map[string]any }
	}
	if op == "BatchGetItem" {
		if err := json.Unmarshal(raw, &gets); err != nil {
			return r, fmt.Errorf("%s %s: %w", op, table, err)
		}
		r.keys, r.ProjectionExpression, r.ExpressionAttributeNames = gets.Keys, gets.ProjectionExpression, gets.ExpressionAttributeNames
	} else {
		if err := json.Unmarshal(raw, &writes); err != nil {
			return r, fmt.Errorf("%s %s: %w", op, table, err)
		}
		for _, w := range writes {
			if w.PutRequest != nil {
				r.items = append(r.items, w.PutRequest.Item)
			}
			if w.DeleteRequest != nil {
				r.keys = append(r.keys, w.DeleteRequest.Key)
			}
		}
	}
	return r, nil
}

// reads are the actions whose Attributes are what they return: the projection, else every attribute.
var reads = []string{"GetItem", "BatchGetItem", "Query", "Scan"}

// allAttributes stands for "every attribute of the item" (a read without a projection), which no list names.
const allAttributes = "(all attributes)"

// access computes the condition keys of one action on r's table or index: dynamodb:LeadingKeys, the partition key
// values it touches (a Query's from its key condition); dynamodb:Attributes, the top-level attribute names of its
// keys, items and expressions (condition expressions included: at least what IAM counts).
func (r request) access(action string, tables map[string]Table, arn func(string) string) Access {
	t := tables[r.TableName]
	res, hash := arn(r.TableName), t.Hash
	if r.IndexName != "" {
		res, hash = res+"/index/"+r.IndexName, t.Indexes[r.IndexName]
	}
	keys, items := r.keys, r.items
	if r.Key != nil {
		keys = append(keys, r.Key)
	}
	if r.Item != nil {
		items = append(items, r.Item)
	}
	var leading []string
	attrs := map[string]bool{}
	for _, m := range append(slices.Clone(keys), items...) {
		if v, ok := m[hash]; ok {
			leading = append(leading, scalarValue(v))
		}
		for name := range m {
			attrs[name] = true
		}
	}
	if action == "Query" {
		if v, ok := r.partitionValue(hash); ok {
			leading = append(leading, v)
		}
	}
	for _, e := range []string{r.UpdateExpression, r.ConditionExpression, r.KeyConditionExpression, r.ProjectionExpression} {
		for _, n := range r.names(e) {
			attrs[n] = true
		}
	}
	if slices.Contains(reads, action) && r.ProjectionExpression == "" {
		attrs[allAttributes] = true
	}
	return Access{Action: "dynamodb:" + action, Resource: res,
		Keys: map[string][]string{"dynamodb:LeadingKeys": leading, "dynamodb:Attributes": slices.Sorted(maps.Keys(attrs))}}
}

// token is a name in an expression: #alias, :value or a bare attribute name or keyword, with what precedes it.
var token = regexp.MustCompile(`[#:]?[A-Za-z_][A-Za-z0-9_]*`)

// keywords of update and condition expressions (functions are known by the parenthesis that follows them).
var keywords = []string{"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"}

// names returns the top-level attribute names an expression refers to.
func (r request) names(expr string) []string {
	var out []string
	for _, loc := range token.FindAllStringIndex(expr, -1) {
		tok := expr[loc[0]:loc[1]]
		before, after := strings.TrimRight(expr[:loc[0]], " "), strings.TrimLeft(expr[loc[1]:], " ")
		switch {
		case strings.HasSuffix(before, ".") || strings.HasPrefix(tok, ":"): // a nested name, or a value
		case strings.HasPrefix(tok, "#"):
			out = append(out, r.ExpressionAttributeNames[tok])
		case strings.HasPrefix(after, "(") || slices.Contains(keywords, strings.ToUpper(tok)):
		default:
			out = append(out, tok)
		}
	}
	return out
}

var equality = regexp.MustCompile(`([#A-Za-z_][A-Za-z0-9_]*)\s*=\s*(:[A-Za-z0-9_]+)`)

// partitionValue finds "hash = :v" (or "#h = :v") in the key condition and returns :v's value.
func (r request) partitionValue(hash string) (string, bool) {
	for _, g := range equality.FindAllStringSubmatch(r.KeyConditionExpression, -1) {
		name := g[1]
		if strings.HasPrefix(name, "#") {
			name = r.ExpressionAttributeNames[name]
		}
		if v, ok := r.ExpressionAttributeValues[g[2]]; ok && name == hash {
			return scalarValue(v), true
		}
	}
	return "", false
}

// scalarValue is an attribute value's string form: S and N as sent, B as its base64.
func scalarValue(v map[string]any) string {
	for _, t := range []string{"S", "N", "B"} {
		if s, ok := v[t].(string); ok {
			return s
		}
	}
	return ""
}
