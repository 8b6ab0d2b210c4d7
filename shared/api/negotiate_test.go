package api

import (
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// hdr builds a header with each value as a separate value, as the API proxy delivers a comma-separated header.
func hdr(name string, values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add(name, v)
	}
	return h
}

func TestNegotiateType(t *testing.T) {
	offers := []string{"application/json", "text/csv"}
	for _, tc := range []struct {
		name   string
		values []string
		want   string
	}{
		{"no header", nil, "application/json"},
		{"csv", []string{"text/csv"}, "text/csv"},
		{"json first, csv q=0.5 (one value)", []string{"application/json, text/csv;q=0.5"}, "application/json"},
		{"json first, csv q=0.5 (split values)", []string{"application/json", "text/csv;q=0.5"}, "application/json"},
		{"csv preferred by q in the second value", []string{"application/json;q=0.4", "text/csv"}, "text/csv"},
		{"csv listed first, equal q", []string{"text/csv, application/json"}, "text/csv"},
		{"csv refused", []string{"text/csv;q=0, */*"}, "application/json"},
		{"wildcard subtype", []string{"text/*"}, "text/csv"},
		{"any", []string{"*/*"}, "application/json"},
		{"specific beats wildcard q", []string{"*/*;q=0.9", "text/csv;q=0.1"}, "application/json"},
		{"nothing acceptable: default", []string{"image/png"}, "application/json"},
		{"malformed q counts as 0", []string{"text/csv;q=high", "application/json;q=0.1"}, "application/json"},
		{"case and spaces", []string{"  TEXT/CSV ; Q=0.8 ", "application/json;q=0.5"}, "text/csv"},
		{"parameters", []string{"text/csv;charset=utf-8;q=0.9, application/json;q=0.2"}, "text/csv"},
	} {
		if got := NegotiateType(hdr("Accept", tc.values...), offers...); got != tc.want {
			t.Errorf("%s: NegotiateType(Accept: %q) = %q, want %q", tc.name, tc.values, got, tc.want)
		}
	}
}

func TestAcceptsEncoding(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"deflate, gzip"}, true},
		{[]string{"deflate", "gzip"}, true}, // the proxy's split: gzip is the second value
		{[]string{"deflate", "br"}, false},
		{[]string{"gzip;q=0"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"gzip;q=0", "*"}, false}, // an explicit entry wins over *
		{[]string{"*", "gzip;q=0"}, false},
		{[]string{"x-gzip"}, true},
		{[]string{"GZIP;Q=0.5"}, true},
		{[]string{"gzip;q=2"}, false}, // out of range: counts as 0
		{[]string{"identity", "gzip;q=0.001"}, true},
	} {
		if got := AcceptsEncoding(hdr("Accept-Encoding", tc.values...), "gzip"); got != tc.want {
			t.Errorf("AcceptsEncoding(%q, gzip) = %v, want %v", tc.values, got, tc.want)
		}
	}
}

func TestNoneMatch(t *testing.T) {
	const etag = `"abc"`
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{`"abc"`}, true},
		{[]string{`"x", "abc"`}, true},
		{[]string{`"x"`, `"abc"`}, true}, // split by the proxy
		{[]string{`W/"abc"`}, true},      // weak comparison
		{[]string{`"x"`, `"y"`}, false},
		{[]string{`*`}, true},
		{[]string{`"abcd"`}, false},
	} {
		if got := NoneMatch(hdr("If-None-Match", tc.values...), etag); got != tc.want {
			t.Errorf("NoneMatch(%q, %s) = %v, want %v", tc.values, etag, got, tc.want)
		}
	}
}

func TestHeaderElements(t *testing.T) {
	got := HeaderElements(hdr("Accept", "a, b", " ", "c,,d "), "Accept")
	want := []string{"a", "b", "c", "d"}
	if len(got) != len(want) {
		t.Fatalf("HeaderElements = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("HeaderElements[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestThroughTheProxy: the API Gateway proxy splits a comma-separated header into several values; the helpers read
// what it hands the handler.
func TestThroughTheProxy(t *testing.T) {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/x",
		Headers: map[string]string{"accept": "application/json;q=0.4, text/csv", "accept-encoding": "deflate, gzip",
			"if-none-match": `"a", "b"`},
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/x"}}}
	r, err := (&core.RequestAccessorV2{}).EventToRequest(ev)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Header.Values("Accept-Encoding")); n != 2 {
		t.Fatalf("the proxy gave %d Accept-Encoding values, want 2 (this test relies on its split)", n)
	}
	if got := NegotiateType(r.Header, "application/json", "text/csv"); got != "text/csv" {
		t.Errorf("NegotiateType = %q, want text/csv", got)
	}
	if !AcceptsEncoding(r.Header, "gzip") {
		t.Error("AcceptsEncoding(gzip) = false, want true")
	}
	if !NoneMatch(r.Header, `"b"`) {
		t.Error(`NoneMatch("b") = false, want true`)
	}
}
