// Package authztest puts an authorizer decision in front of a handler in tests, the way API Gateway does:
// Operator injects an operator decision; Front runs the real authorizer (shared/authz) on each request and
// answers API Gateway's 403 on a denial.
package authztest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/authz"
)

// As serves h with the decision c in the request context.
func As(c api.Caller, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(api.WithCaller(r.Context(), c)))
	})
}

// Operator serves h as the operator (no deletion count: registrations skip that check).
func Operator(h http.Handler) http.Handler {
	return As(api.Caller{Role: api.RoleOperator, Generation: -1}, h)
}

// Front runs a's decision on every request to a route template.yaml puts the authorizer in front of, like API
// Gateway: a denial is 403 {"message":"Forbidden"}, an authorizer error 500, an allow serves h with the decision.
func Front(t testing.TB, a *authz.Authorizer, h http.Handler) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	for _, rt := range routetest.AuthorizedRoutes(t) {
		mux.HandleFunc(routetest.Pattern(rt), func(w http.ResponseWriter, r *http.Request) {
			req := authz.Request{RouteKey: rt, DeviceID: r.PathValue("deviceId"),
				Key: api.BearerKey(r.Header.Get("Authorization")), KeyInQuery: r.URL.Query().Has("key")}
			d, err := a.Decide(r.Context(), req)
			switch {
			case err != nil:
				http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
			case !d.Allow:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"message":"Forbidden"}`))
			default:
				h.ServeHTTP(w, r.WithContext(api.WithCaller(r.Context(), d.Caller())))
			}
		})
	}
	return mux
}

// Bearer is the Authorization header value for key.
func Bearer(key string) string { return "Bearer " + strings.TrimSpace(key) }
