package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The stand-in keeps its tables in memory: `make run` saves each table's items to the state folder when it stops
// and loads them when it starts, so devices and jobs outlive a restart as InfluxDB's data does.

// av is one attribute value in DynamoDB's JSON shape ({"S": "x"}, {"N": "1"}, {"SS": [...]}, ...).
type av map[string]json.RawMessage

func toJSON(v types.AttributeValue) (any, error) {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": x.Value}, nil
	case *types.AttributeValueMemberN:
		return map[string]any{"N": x.Value}, nil
	case *types.AttributeValueMemberB:
		return map[string]any{"B": x.Value}, nil
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": x.Value}, nil
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}, nil
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": x.Value}, nil
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": x.Value}, nil
	case *types.AttributeValueMemberBS:
		return map[string]any{"BS": x.Value}, nil
	case *types.AttributeValueMemberL:
		out := make([]any, len(x.Value))
		for i, e := range x.Value {
			j, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return map[string]any{"L": out}, nil
	case *types.AttributeValueMemberM:
		m, err := itemJSON(x.Value)
		return map[string]any{"M": m}, err
	}
	return nil, fmt.Errorf("attribute value of type %T", v)
}

func itemJSON(it map[string]types.AttributeValue) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range it {
		j, err := toJSON(v)
		if err != nil {
			return nil, err
		}
		out[k] = j
	}
	return out, nil
}

func fromJSON(raw av) (types.AttributeValue, error) {
	for k, v := range raw {
		var err error
		switch k {
		case "S":
			var s string
			err = json.Unmarshal(v, &s)
			return &types.AttributeValueMemberS{Value: s}, err
		case "N":
			var s string
			err = json.Unmarshal(v, &s)
			return &types.AttributeValueMemberN{Value: s}, err
		case "B":
			var b []byte
			err = json.Unmarshal(v, &b)
			return &types.AttributeValueMemberB{Value: b}, err
		case "BOOL":
			var b bool
			err = json.Unmarshal(v, &b)
			return &types.AttributeValueMemberBOOL{Value: b}, err
		case "NULL":
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "SS", "NS":
			var ss []string
			err = json.Unmarshal(v, &ss)
			if k == "SS" {
				return &types.AttributeValueMemberSS{Value: ss}, err
			}
			return &types.AttributeValueMemberNS{Value: ss}, err
		case "BS":
			var bs [][]byte
			err = json.Unmarshal(v, &bs)
			return &types.AttributeValueMemberBS{Value: bs}, err
		case "L":
			var l []av
			if err = json.Unmarshal(v, &l); err != nil {
				return nil, err
			}
			out := make([]types.AttributeValue, len(l))
			for i, e := range l {
				if out[i], err = fromJSON(e); err != nil {
					return nil, err
				}
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		case "M":
			var m map[string]av
			if err = json.Unmarshal(v, &m); err != nil {
				return nil, err
			}
			it, err := itemFrom(m)
			return &types.AttributeValueMemberM{Value: it}, err
		}
	}
	return nil, errors.New("an attribute value without a known type")
}

func itemFrom(m map[string]av) (map[string]types.AttributeValue, error) {
	it := map[string]types.AttributeValue{}
	for k, v := range m {
		x, err := fromJSON(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		it[k] = x
	}
	return it, nil
}

// saveTable writes every item of the table to path (mode 0600: device tokens in direct mode).
func saveTable(ctx context.Context, db *dynamodb.Client, table, path string) (int, error) {
	var items []map[string]any
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: &table})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		for _, it := range page.Items {
			j, err := itemJSON(it)
			if err != nil {
				return 0, err
			}
			items = append(items, j)
		}
	}
	b, err := json.Marshal(items)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return 0, err
	}
	return len(items), os.Rename(path+".tmp", path)
}

// loadTable writes the items saved in path into the table (none when the file does not exist).
func loadTable(ctx context.Context, db *dynamodb.Client, table, path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var raw []map[string]av
	if err := json.Unmarshal(b, &raw); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	for start := 0; start < len(raw); start += 25 {
		var batch []types.WriteRequest
		for _, m := range raw[start:min(len(raw), start+25)] {
			it, err := itemFrom(m)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", path, err)
			}
			batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		req := map[string][]types.WriteRequest{table: batch}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == 20 {
				return 0, errors.New("loading the saved table: items still unprocessed")
			}
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
			if err != nil {
				return 0, err
			}
			req = out.UnprocessedItems
		}
	}
	return len(raw), nil
}
