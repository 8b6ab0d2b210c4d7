package influx

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Extern holds the values a Flux script reads as options. InfluxDB OSS rejects Flux `params` (only Cloud TSM has
// them), so caller values travel in the query API's `extern` field as typed AST literals: they are data, never
// parsed as Flux, whatever characters they hold. Supported values: string, int, int64, float64, bool,
// time.Time, time.Duration, *regexp.Regexp (a regular expression literal: InfluxDB pushes `r.tag =~ re` down to the
// storage engine, unlike contains() over a set).
type Extern map[string]any

// OneOf is a regular expression matching exactly the given values: passed in an Extern, `r.tag =~ re` selects
// those tag values in the storage engine's index (a filter on a set of ids that is pushed down).
func OneOf(values []string) *regexp.Regexp {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return regexp.MustCompile("^(?:" + strings.Join(quoted, "|") + ")$")
}

// ast renders the extern as the Flux AST file InfluxDB expects: one `option name = literal` per value.
func (e Extern) ast() (map[string]any, error) {
	names := make([]string, 0, len(e))
	for k := range e {
		names = append(names, k)
	}
	sort.Strings(names)
	body := make([]any, 0, len(e))
	for _, name := range names {
		lit, err := literal(e[name])
		if err != nil {
			return nil, fmt.Errorf("influx: extern %s: %w", name, err)
		}
		body = append(body, map[string]any{
			"type": "OptionStatement",
			"assignment": map[string]any{
				"type": "VariableAssignment",
				"id":   map[string]any{"type": "Identifier", "name": name},
				"init": lit,
			},
		})
	}
	return map[string]any{"type": "File", "package": nil, "imports": nil, "body": body}, nil
}

func literal(v any) (map[string]any, error) {
	switch x := v.(type) {
	case string:
		return map[string]any{"type": "StringLiteral", "value": x}, nil
	case int:
		return map[string]any{"type": "IntegerLiteral", "value": strconv.Itoa(x)}, nil
	case int64:
		return map[string]any{"type": "IntegerLiteral", "value": strconv.FormatInt(x, 10)}, nil
	case float64:
		return map[string]any{"type": "FloatLiteral", "value": x}, nil
	case bool:
		return map[string]any{"type": "BooleanLiteral", "value": x}, nil
	case *regexp.Regexp:
		return map[string]any{"type": "RegexpLiteral", "value": x.String()}, nil
	case time.Time:
		return map[string]any{"type": "DateTimeLiteral", "value": x.UTC().Format(time.RFC3339Nano)}, nil
	case time.Duration:
		if x%time.Nanosecond != 0 || x < 0 {
			return nil, fmt.Errorf("unsupported duration %s", x)
		}
		return map[string]any{"type": "DurationLiteral", "values": []any{map[string]any{"magnitude": int64(x), "unit": "ns"}}}, nil
	default:
		return nil, fmt.Errorf("unsupported type %T", v)
	}
}

// QueryRaw runs a fixed Flux script with extern values and returns the annotated CSV body, which the caller
// must close. The ctx deadline bounds the whole query.
func (c *Client) QueryRaw(ctx context.Context, flux string, extern Extern) (io.ReadCloser, error) {
	req := map[string]any{
		"query":   flux,
		"type":    "flux",
		"dialect": map[string]any{"header": true, "annotations": []string{"datatype", "group", "default"}, "delimiter": ","},
	}
	if len(extern) > 0 {
		file, err := extern.ast()
		if err != nil {
			return nil, err
		}
		req["extern"] = file
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	u := c.url + "/api/v2/query?" + url.Values{"org": {c.org}}.Encode()
	resp, err := c.do(ctx, "POST", u, "application/json", "", body)
	if err != nil {
		return nil, fmt.Errorf("influx: query: %w", err)
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			_ = resp.Body.Close()
			return nil, fmt.Errorf("influx: query: %w", err)
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, resp.Body}, nil
	}
	return resp.Body, nil
}

// QueryRows runs a query and calls fn with each row's cells typed by their #datatype (Header.Typed), keyed by
// column name; it stops at the first error.
func (c *Client) QueryRows(ctx context.Context, flux string, extern Extern, fn func(values map[string]any) error) error {
	rc, err := c.QueryRaw(ctx, flux, extern)
	if err != nil {
		return err
	}
	defer rc.Close()
	return ReadTables(rc, func(h *Header) (func([]string) error, error) {
		return func(rec []string) error {
			values := make(map[string]any, len(h.Columns))
			for i, name := range h.Columns {
				if name == "" {
					continue // the annotations' column
				}
				v, err := h.Typed(rec, i)
				if err != nil {
					return err
				}
				values[name] = v
			}
			return fn(values)
		}, nil
	})
}
