package backfill

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// TestHandlerRequiresOperator sends every write-missing route with each role. The requests are invalid (an unknown
// query parameter, days 0, a malformed job id) and the Service has no stores: an operator is answered 400 by the
// handler's own validation (it was reached), every other role 403 before the handler runs (a handler reaching its
// nil stores would answer 500).
func TestHandlerRequiresOperator(t *testing.T) {
	routes := []struct{ method, path, body string }{
		{"POST", "/api/devices/dev-1/write-missing", `{"days":0}`},
		{"POST", "/api/write-missing", `{"days":0}`},
		{"GET", "/api/devices/dev-1/write-missing?bogus=1", ""},
		{"GET", "/api/write-missing?bogus=1", ""},
		{"GET", JobsPath + "not-a-job", ""},
	}
	roles := []struct {
		role string
		want int
	}{
		{api.RoleOperator, http.StatusBadRequest},
		{"", http.StatusForbidden},
		{api.RoleDevice, http.StatusForbidden},
		{api.RoleProvisioning, http.StatusForbidden},
		{api.RoleOpen, http.StatusForbidden},
		{"Operator", http.StatusForbidden},
	}
	h := api.Handler((&Service{}).Routes())
	for _, rt := range routes {
		for _, rl := range roles {
			t.Run(rt.method+" "+rt.path+" as "+rl.role, func(t *testing.T) {
				req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(rt.body))
				ctx := api.WithCaller(context.Background(), api.Caller{Role: rl.role, DeviceID: "dev-1", Generation: -1})
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req.WithContext(ctx))
				if rec.Code != rl.want {
					t.Fatalf("status = %d, want %d (body %s)", rec.Code, rl.want, rec.Body.String())
				}
				var body map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("answer %q is not JSON: %v", rec.Body.String(), err)
				}
			})
		}
	}
}
