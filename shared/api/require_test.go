package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Require runs the route's handler for its role only; every other decision is a 403 before the handler runs.
func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		role string
		want int
	}{
		{api.RoleOperator, http.StatusNoContent},
		{api.RoleProvisioning, http.StatusForbidden},
		{api.RoleDevice, http.StatusForbidden},
		{"", http.StatusForbidden},
		{"Operator", http.StatusForbidden},
	} {
		t.Run(tc.role, func(t *testing.T) {
			ran := false
			h := api.Require(api.RoleOperator, func(w http.ResponseWriter, r *http.Request) {
				ran = true
				w.WriteHeader(http.StatusNoContent)
			})
			r := httptest.NewRequest("GET", "/api/devices", nil)
			r = r.WithContext(api.WithCaller(r.Context(), api.Caller{Role: tc.role}))
			w := httptest.NewRecorder()
			h(w, r)
			if w.Code != tc.want || ran != (tc.want == http.StatusNoContent) {
				t.Errorf("role %q: got %d (handler ran: %v), want %d", tc.role, w.Code, ran, tc.want)
			}
		})
	}
}
