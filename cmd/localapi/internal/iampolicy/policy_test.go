package iampolicy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const tableARN = "arn:aws:local:us-east-1:123456789012:StateTable"

var tables = map[string]Table{"StateTable": {Hash: "pk", Indexes: map[string]string{"byStatus": "st"}}}

func arn(name string) string { return "arn:aws:local:us-east-1:123456789012:" + name }

// policy parses a Policies property written as JSON.
func policy(t *testing.T, doc string) Policy {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	p, err := Parse(v)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// A write policy confined to partitions and attributes, a read policy, and a Query on the indexes: what template.yaml
// declares, checked against calls as the SDK sends them.
func TestAllows(t *testing.T) {
	p := policy(t, `[{"SQSSendMessagePolicy": {"QueueName": "Q"}}, "AWSLambdaBasicExecutionRole", {"Statement": [
		{"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Scan"], "Resource": "`+tableARN+`"},
		{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "`+tableARN+`/index/*"},
		{"Effect": "Allow", "Action": ["dynamodb:UpdateItem", "dynamodb:PutItem"], "Resource": "`+tableARN+`",
		 "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["DEVICE#*", "COUNTER"]},
		               "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "n", "s"]}}},
		{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}]}]`)
	for _, c := range []struct {
		name, op, body string
		want           bool
	}{
		{"get", "GetItem", `{"TableName":"StateTable","Key":{"pk":{"S":"JOB#1"},"sk":{"S":"JOB"}}}`, true},
		{"batch get", "BatchGetItem", `{"RequestItems":{"StateTable":{"Keys":[{"pk":{"S":"A"},"sk":{"S":"B"}}]}}}`, true},
		{"scan has no leading keys", "Scan", `{"TableName":"StateTable"}`, true},
		{"query on an index", "Query", `{"TableName":"StateTable","IndexName":"byStatus","KeyConditionExpression":"st = :s",
			"ExpressionAttributeValues":{":s":{"S":"online"}}}`, true},
		{"query on the table", "Query", `{"TableName":"StateTable","KeyConditionExpression":"pk = :p",
			"ExpressionAttributeValues":{":p":{"S":"DEVICE#a"}}}`, false},
		{"update of allowed attributes", "UpdateItem", `{"TableName":"StateTable","Key":{"pk":{"S":"DEVICE#a"},"sk":{"S":"SERIES"}},
			"UpdateExpression":"ADD #s :new","ConditionExpression":"attribute_not_exists(n) OR n <= :room",
			"ExpressionAttributeNames":{"#s":"s"},"ExpressionAttributeValues":{":new":{"SS":["x"]},":room":{"N":"3"}}}`, true},
		{"update touching another attribute", "UpdateItem", `{"TableName":"StateTable","Key":{"pk":{"S":"DEVICE#a"},"sk":{"S":"DEVICE"}},
			"UpdateExpression":"SET #h = :h","ExpressionAttributeNames":{"#h":"hash"},"ExpressionAttributeValues":{":h":{"S":"x"}}}`, false},
		{"condition on another attribute", "UpdateItem", `{"TableName":"StateTable","Key":{"pk":{"S":"COUNTER"},"sk":{"S":"SERIES"}},
			"UpdateExpression":"ADD n :k","ConditionExpression":"#g = :g","ExpressionAttributeNames":{"#g":"generation"},
			"ExpressionAttributeValues":{":k":{"N":"1"},":g":{"N":"2"}}}`, false},
		{"nested names count as their top level", "UpdateItem", `{"TableName":"StateTable","Key":{"pk":{"S":"COUNTER"},"sk":{"S":"X"}},
			"UpdateExpression":"SET s.inner = if_not_exists(n, :z)","ExpressionAttributeValues":{":z":{"N":"0"}}}`, true},
		{"update in another partition", "UpdateItem", `{"TableName":"StateTable","Key":{"pk":{"S":"JOBS"},"sk":{"S":"1"}},
			"UpdateExpression":"ADD n :k","ExpressionAttributeValues":{":k":{"N":"1"}}}`, false},
		{"put of allowed attributes", "PutItem", `{"TableName":"StateTable","Item":{"pk":{"S":"COUNTER"},"sk":{"S":"X"},"n":{"N":"1"}}}`, true},
		{"put with another attribute", "PutItem", `{"TableName":"StateTable","Item":{"pk":{"S":"COUNTER"},"sk":{"S":"X"},"at":{"S":"1"}}}`, false},
		{"delete not granted", "DeleteItem", `{"TableName":"StateTable","Key":{"pk":{"S":"DEVICE#a"},"sk":{"S":"DEVICE"}}}`, false},
		{"another table", "GetItem", `{"TableName":"Other","Key":{"pk":{"S":"A"}}}`, false},
		{"batch write not granted", "BatchWriteItem", `{"RequestItems":{"StateTable":[{"PutRequest":{"Item":{"pk":{"S":"COUNTER"}}}}]}}`, false},
		{"transaction items are checked as their own actions", "TransactWriteItems", `{"TransactItems":[
			{"Update":{"TableName":"StateTable","Key":{"pk":{"S":"COUNTER"},"sk":{"S":"A"}},"UpdateExpression":"ADD n :k",
			 "ExpressionAttributeValues":{":k":{"N":"1"}}}},
			{"Delete":{"TableName":"StateTable","Key":{"pk":{"S":"COUNTER"},"sk":{"S":"B"}}}}]}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			as, err := Accesses(c.op, []byte(c.body), tables, arn)
			if err != nil {
				t.Fatalf("Accesses: %v", err)
			}
			got := true
			for _, a := range as {
				got = got && p.Allows(a)
			}
			if got != c.want {
				t.Errorf("allowed = %v, want %v (accesses %+v)", got, c.want, as)
			}
		})
	}
}

// A deny wins over an allow; an empty policy allows nothing.
func TestDenyWinsAndDefaultDeny(t *testing.T) {
	p := policy(t, `{"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
		{"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "`+tableARN+`"}]}`)
	del := Access{Action: "dynamodb:DeleteItem", Resource: tableARN}
	get := Access{Action: "dynamodb:GetItem", Resource: tableARN}
	if p.Allows(del) || !p.Allows(get) {
		t.Errorf("delete allowed %v (want false), get allowed %v (want true)", p.Allows(del), p.Allows(get))
	}
	if (Policy{}).Allows(get) {
		t.Error("an empty policy allowed a GetItem")
	}
}

// What the stand-in cannot evaluate is refused when the policies are read, not guessed at.
func TestParseRefusesWhatItCannotEvaluate(t *testing.T) {
	for _, doc := range []string{
		`"AmazonDynamoDBFullAccess"`,
		`{"DynamoDBCrudPolicy": {"TableName": "T"}}`,
		`{"Statement": [{"Effect": "Allow", "NotAction": "dynamodb:DeleteItem", "Resource": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*",
			"Condition": {"StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}}}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*",
			"Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]}`,
	} {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(v); err == nil {
			t.Errorf("Parse(%s) = nil error, want a refusal", doc)
		}
	}
	if _, err := Accesses("ExecuteStatement", []byte(`{}`), tables, arn); err == nil || !strings.Contains(err.Error(), "not known") {
		t.Errorf("an unknown operation: err = %v, want not known", err)
	}
}

func TestLike(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"DEVICE#*", "DEVICE#a/b", true},
		{"JOB#*", "JOBS", false},
		{"JOB?", "JOBS", true},
		{"arn:x:T/index/*", "arn:x:T/index/byId", true},
		{"arn:x:T", "arn:x:T/index/byId", false},
		{"a[b]", "a[b]", true},
	} {
		if got := like(c.pattern, c.s); got != c.want {
			t.Errorf("like(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// The top-level attribute names of update and condition expressions: aliases resolved, values, keywords, functions
// and nested paths left out.
func TestExpressionNames(t *testing.T) {
	r := request{ExpressionAttributeNames: map[string]string{"#s": "seen", "#n": "name", "#x": "expiresAt"}}
	for _, c := range []struct{ expr, want string }{
		{"SET #s = :s, updated = :u ADD n :k", "[seen updated n]"},
		{"SET a.b = :v, c[2] = :w REMOVE d.e[0]", "[a c d]"},
		{"attribute_not_exists(pk) OR #x <= :now", "[pk expiresAt]"},
		{"NOT contains(#n, :v) AND size(tags) > :z", "[name tags]"},
		{"SET total = if_not_exists(total, :z) + :k", "[total total]"},
		{"st BETWEEN :a AND :b", "[st]"},
		{"", "[]"},
	} {
		if got := fmt.Sprint(r.names(c.expr)); got != c.want {
			t.Errorf("names(%q) = %s, want %s", c.expr, got, c.want)
		}
	}
}
