package deviceapi

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestWantsTextNegotiates: every Accept value counts, as the API proxy splits a comma-separated header.
func TestWantsTextNegotiates(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"text/plain"}, true},
		{[]string{"application/json;q=0.5", "text/plain"}, true},
		{[]string{"application/json", "text/plain;q=0.9"}, false},
		{[]string{"text/plain;q=0", "*/*"}, false},
		{[]string{"text/html", "text/*"}, true},
	} {
		r := httptest.NewRequest("GET", "/api/env/a", nil)
		for _, v := range tc.values {
			r.Header.Add("Accept", v)
		}
		if got, err := wantsText(r, url.Values{}); err != nil || got != tc.want {
			t.Errorf("wantsText(Accept: %q) = %v, %v; want %v", tc.values, got, err, tc.want)
		}
	}
}
