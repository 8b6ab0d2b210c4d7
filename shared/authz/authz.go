// Package authz is the HTTP API Lambda authorizer (payload 2.0, simple responses). It decides per request, from the
// route and the caller's key, whether API Gateway may run the route's function:
//
//   - the operator key allows every route;
//   - the provisioning key allows GET /api/env/{deviceId} only for an id that is not registered yet (registration);
//   - for a registered id, GET /api/env/{deviceId} needs the operator key or that device's own current InfluxDB
//     token, so one device can never read another's token;
//   - DEVICE_AUTH=none leaves GET /api/env/{deviceId} open (unmodified iot-center-v2 clients send no key).
//
// The key comes from `Authorization: Bearer <key>` or the `key` query parameter. Keys are compared in constant time
// on their SHA-256 hashes and are never logged. The device cap (429) is enforced by the registry, not here: an
// authorizer can only allow or deny.
package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
)

// EnvRouteKey is the one route devices call; every other route is for the operator.
const EnvRouteKey = "GET /api/env/{deviceId}"

// MaxKeyBytes caps the key read from a request: longer values cannot be a key or a token and are not hashed.
const MaxKeyBytes = 1024

// Roles reported in the authorizer context (requestContext.authorizer.lambda.role) to the functions.
const (
	RoleOperator     = "operator"
	RoleProvisioning = "provisioning"
	RoleDevice       = "device"
	RoleOpen         = "open" // DEVICE_AUTH=none on the env route
)

// DeviceTokens tells the authorizer a device's current InfluxDB token. An unregistered id is an *api.Error with
// code api.NotFound; any other error means the registry could not be read.
type DeviceTokens interface {
	DeviceToken(ctx context.Context, id string) (config.Secret, error)
}

// Keys are the secrets the authorizer checks against, kept only as hashes.
type Keys struct {
	operator     [sha256.Size]byte
	provisioning [sha256.Size]byte
	hasProv      bool
	// OpenEnv is DEVICE_AUTH=none: GET /api/env/{deviceId} needs no key.
	OpenEnv bool
}

// NewKeys hashes the operator key (required) and the provisioning key (optional: empty disables key-based
// registration, leaving it to the operator).
func NewKeys(operator, provisioning config.Secret, openEnv bool) (Keys, error) {
	if operator.Empty() {
		return Keys{}, errors.New("authz: the operator key is required (IOT_OPERATOR_KEY or OPERATOR_KEY_PARAMETER)")
	}
	if operator == provisioning {
		return Keys{}, errors.New("authz: the provisioning key must differ from the operator key")
	}
	k := Keys{operator: sha256.Sum256([]byte(operator.Reveal())), OpenEnv: openEnv}
	if !provisioning.Empty() {
		k.provisioning, k.hasProv = sha256.Sum256([]byte(provisioning.Reveal())), true
	}
	return k, nil
}

// LoadKeys reads the keys once at cold start: IOT_OPERATOR_KEY / IOT_DEVICE_KEY from the environment, else the SSM
// SecureStrings named by OPERATOR_KEY_PARAMETER / DEVICE_KEY_PARAMETER; DEVICE_AUTH is "key" (default) or "none".
// store may be nil (an SSM client is then built only if a parameter has to be read).
func LoadKeys(ctx context.Context, getenv config.Getenv, store config.ParameterStore) (Keys, error) {
	mode := strings.TrimSpace(getenv("DEVICE_AUTH"))
	if mode != "" && mode != "key" && mode != "none" {
		return Keys{}, fmt.Errorf("authz: DEVICE_AUTH must be key or none, got %q", mode)
	}
	op, err := config.LoadSecret(ctx, getenv, store, "IOT_OPERATOR_KEY", "OPERATOR_KEY_PARAMETER")
	if err != nil {
		return Keys{}, err
	}
	prov, err := config.LoadSecret(ctx, getenv, store, "IOT_DEVICE_KEY", "DEVICE_KEY_PARAMETER")
	if err != nil {
		return Keys{}, err
	}
	return NewKeys(op, prov, mode == "none")
}

// Decision is the outcome for one request. Reason is for the log only (it never holds a key).
type Decision struct {
	Allow    bool
	Role     string
	DeviceID string
	Reason   string
}

// Authorizer decides requests; it is safe for concurrent use.
type Authorizer struct {
	keys    Keys
	devices DeviceTokens
	// Metrics receives the EMF lines of the decisions (metrics.Stdout by default).
	Metrics io.Writer
}

// New builds an Authorizer. devices may be nil only when the env route is open (nothing then needs the registry).
func New(keys Keys, devices DeviceTokens) *Authorizer {
	return &Authorizer{keys: keys, devices: devices, Metrics: metrics.Stdout}
}

// Request is what a decision depends on, taken from the API Gateway event.
type Request struct {
	RouteKey string // "GET /api/env/{deviceId}"
	DeviceID string // the {deviceId} path parameter, when the route has one
	Key      string // from the Authorization header or the key query parameter
}

// Decide applies the rules in the package comment. An error means the registry could not be consulted: the caller
// fails the invocation (API Gateway answers 500) rather than guessing.
func (a *Authorizer) Decide(ctx context.Context, r Request) (Decision, error) {
	env := r.RouteKey == EnvRouteKey
	if env && a.keys.OpenEnv {
		return Decision{Allow: true, Role: RoleOpen, DeviceID: r.DeviceID, Reason: "DEVICE_AUTH=none"}, nil
	}
	if r.Key == "" {
		return Decision{Reason: "no key"}, nil
	}
	if len(r.Key) > MaxKeyBytes {
		return Decision{Reason: "key too long"}, nil
	}
	sum := sha256.Sum256([]byte(r.Key))
	if equal(sum, a.keys.operator) {
		return Decision{Allow: true, Role: RoleOperator, DeviceID: r.DeviceID, Reason: "operator key"}, nil
	}
	if !env {
		return Decision{Reason: "operator route without the operator key"}, nil
	}
	if !api.ValidDeviceID(r.DeviceID) {
		// only the operator gets as far as the function's 400 for a malformed id
		return Decision{Reason: "invalid device id"}, nil
	}
	if a.devices == nil {
		return Decision{}, errors.New("authz: no device registry configured")
	}
	tok, err := a.devices.DeviceToken(ctx, r.DeviceID)
	switch {
	case api.IsCode(err, api.NotFound):
		if a.keys.hasProv && equal(sum, a.keys.provisioning) {
			return Decision{Allow: true, Role: RoleProvisioning, DeviceID: r.DeviceID, Reason: "provisioning key, new device"}, nil
		}
		return Decision{DeviceID: r.DeviceID, Reason: "unregistered device without the provisioning key"}, nil
	case err != nil:
		return Decision{}, fmt.Errorf("authz: reading the registry for %s: %w", r.DeviceID, err)
	}
	if !tok.Empty() && equal(sum, sha256.Sum256([]byte(tok.Reveal()))) {
		return Decision{Allow: true, Role: RoleDevice, DeviceID: r.DeviceID, Reason: "device's own token"}, nil
	}
	return Decision{DeviceID: r.DeviceID, Reason: "registered device without its own token or the operator key"}, nil
}

func equal(a, b [sha256.Size]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// FromEvent extracts the route, device id and key from an API Gateway payload 2.0 authorizer request.
func FromEvent(ev events.APIGatewayV2CustomAuthorizerV2Request) Request {
	r := Request{RouteKey: ev.RouteKey, DeviceID: ev.PathParameters["deviceId"]}
	if r.RouteKey == "" || r.RouteKey == "$default" {
		// a $default catch-all carries no route template: derive the env route from method and path
		r.RouteKey = ev.RequestContext.HTTP.Method + " " + ev.RawPath
		if id, ok := strings.CutPrefix(ev.RawPath, "/api/env/"); ok && ev.RequestContext.HTTP.Method == "GET" && !strings.Contains(id, "/") {
			r.RouteKey = EnvRouteKey
			if r.DeviceID == "" {
				r.DeviceID, _ = url.PathUnescape(id)
			}
		}
	}
	r.Key = keyOf(ev)
	return r
}

// keyOf reads `Authorization: Bearer <key>` (header names are case-insensitive), else the key query parameter.
func keyOf(ev events.APIGatewayV2CustomAuthorizerV2Request) string {
	for name, v := range ev.Headers {
		if !strings.EqualFold(name, "authorization") {
			continue
		}
		scheme, key, ok := strings.Cut(strings.TrimSpace(v), " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(key)
		}
	}
	if k := ev.QueryStringParameters["key"]; k != "" {
		return k
	}
	return ""
}

// Handle is the Lambda handler: an allow or deny simple response (API Gateway answers 403 on deny). The role and
// device id travel to the function in the authorizer context.
func (a *Authorizer) Handle(ctx context.Context, ev events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error) {
	r := FromEvent(ev)
	l := api.Logger(ctx).With(slog.String("apiRequestId", ev.RequestContext.RequestID), slog.String("route", r.RouteKey))
	if r.DeviceID != "" && api.ValidDeviceID(r.DeviceID) {
		l = l.With(slog.String("deviceId", r.DeviceID))
	}
	d, err := a.Decide(ctx, r)
	if err != nil {
		l.ErrorContext(ctx, "authorizer failed", slog.String("error", err.Error()))
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{}, errors.New("internal error")
	}
	l.InfoContext(ctx, "authorizer decision", slog.Bool("allow", d.Allow), slog.String("role", d.Role), slog.String("reason", d.Reason))
	if d.Allow {
		metrics.Emit(ctx, a.Metrics, "AuthAllowed", 1, metrics.Count, metrics.Dim{Name: "Role", Value: d.Role})
	} else {
		metrics.Emit(ctx, a.Metrics, "AuthDenied", 1, metrics.Count)
	}
	resp := events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: d.Allow}
	if d.Allow {
		resp.Context = map[string]any{"role": d.Role}
	}
	return resp, nil
}
