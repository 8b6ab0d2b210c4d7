package api_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

func TestQueryRefusesWhatTheRouteDoesNotTake(t *testing.T) {
	tests := []struct {
		query     string
		wantParam string // "" when the query is accepted
		wantMsg   string
	}{
		{"", "", ""},
		{"from=a&to=b", "", ""},
		{"from=a&from=b", "from", "once"},
		{"days=7", "days", "unknown query parameter days"},
		{"%22%29%7C%3E=1", "query", "unknown query parameter"},
		{strings.Repeat("a", 33) + "=1", "query", "unknown query parameter"},
		{"from=%zz", "query", "malformed"},
		{"key=secret", "key", "Authorization header"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := api.Query(httptest.NewRequest("GET", "/x?"+tt.query, nil), "from", "to")
			if tt.wantParam == "" {
				if err != nil {
					t.Fatalf("Query(%q) = %v, want accepted", tt.query, err)
				}
				if got, want := q.Encode(), tt.query; got != want {
					t.Errorf("values = %q, want %q", got, want)
				}
				return
			}
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.Invalid || e.Param != tt.wantParam || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("Query(%q) = %#v, want invalid %q containing %q", tt.query, err, tt.wantParam, tt.wantMsg)
			}
		})
	}
}
