// Package authz is the HTTP API Lambda authorizer (payload 2.0, simple responses). It decides once per request,
// from the route and the caller's key, and hands its decision to the function in the simple response's context
// (api.Caller). Who may call what, and the refusals it lets through flagged, are in README.md.
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
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// EnvRouteKey is the one route devices call; every other route is for the operator.
const EnvRouteKey = "GET /api/env/{deviceId}"

// MaxKeyBytes caps the key read from a request: longer values cannot be a key or a token and are not hashed.
const MaxKeyBytes = 1024

// Roles reported in the authorizer context (requestContext.authorizer.lambda.role) to the functions.
const (
	RoleOperator     = api.RoleOperator
	RoleProvisioning = api.RoleProvisioning
	RoleDevice       = api.RoleDevice
	RoleOpen         = api.RoleOpen // DEVICE_AUTH=none on the env route
)

// Routes the decision depends on, exactly as declared in template.yaml.
var (
	// deviceRoutes accept a device's own credential (for its own id).
	deviceRoutes = map[string]bool{
		EnvRouteKey: true,
		"GET /api/devices/{deviceId}/measurements": true,
		"GET /api/devices/{deviceId}/summary":      true,
	}
	// registering routes get the device item's generation in the decision (see api.Caller).
	registering = map[string]bool{
		EnvRouteKey:                           true,
		"POST /api/devices/{deviceId}":        true,
		"POST /api/devices/{deviceId}/rotate": true,
	}
)

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
	Allow        bool
	Role         string
	DeviceID     string
	CredentialID string
	Generation   int64
	Refuse       string
	Reason       string
}

// Caller is the decision as the function receives it.
func (d Decision) Caller() api.Caller {
	return api.Caller{Role: d.Role, DeviceID: d.DeviceID, CredentialID: d.CredentialID, Generation: d.Generation, Refuse: d.Refuse}
}

// Authorizer decides requests; it is safe for concurrent use.
type Authorizer struct {
	keys    Keys
	devices *registry.Registry
	// Metrics receives the EMF lines of the decisions (metrics.Stdout by default).
	Metrics io.Writer
}

// New builds an Authorizer. devices may be nil only when the env route is open (nothing then needs the registry).
func New(keys Keys, devices *registry.Registry) *Authorizer {
	return &Authorizer{keys: keys, devices: devices, Metrics: metrics.Stdout}
}

// Request is what a decision depends on, taken from the API Gateway event.
type Request struct {
	RouteKey   string // "GET /api/env/{deviceId}"
	DeviceID   string // the {deviceId} path parameter, when the route has one
	Key        string // from the Authorization header (Bearer)
	KeyInQuery bool   // the URL carries a key parameter: refused whatever else it carries
}

func deny(id, reason string) Decision { return Decision{DeviceID: id, Generation: -1, Reason: reason} }

// Decide applies the rules in the package comment. An error means the authorizer is misconfigured: the caller
// fails the invocation (API Gateway answers 500) rather than guessing.
func (a *Authorizer) Decide(ctx context.Context, r Request) (Decision, error) {
	id := r.DeviceID
	if r.KeyInQuery {
		return Decision{Allow: true, Generation: -1, Refuse: api.RefuseKeyInQuery, Reason: "key in the query string"}, nil
	}
	env := r.RouteKey == EnvRouteKey
	if env && a.keys.OpenEnv {
		return a.withGeneration(ctx, Decision{Allow: true, Role: RoleOpen, DeviceID: id, Reason: "DEVICE_AUTH=none"})
	}
	if r.Key == "" {
		return deny(id, "no key"), nil
	}
	if len(r.Key) > MaxKeyBytes {
		return deny(id, "key too long"), nil
	}
	sum := sha256.Sum256([]byte(r.Key))
	if equal(sum, a.keys.operator) {
		d := Decision{Allow: true, Role: RoleOperator, DeviceID: id, Generation: -1, Reason: "operator key"}
		if registering[r.RouteKey] && api.ValidDeviceID(id) {
			return a.withGeneration(ctx, d)
		}
		return d, nil
	}
	if !deviceRoutes[r.RouteKey] {
		return deny(id, "operator route without the operator key"), nil
	}
	if !api.ValidDeviceID(id) {
		// only the operator gets as far as the function's 400 for a malformed id
		return deny("", "invalid device id"), nil
	}
	if a.devices == nil {
		return Decision{}, errors.New("authz: no device registry configured")
	}
	if a.keys.hasProv && equal(sum, a.keys.provisioning) {
		if !env {
			return deny(id, "provisioning key outside the env route"), nil
		}
		// create-only, whether or not the id exists: the function registers and answers only the creator
		return a.withGeneration(ctx, Decision{Allow: true, Role: RoleProvisioning, DeviceID: id, Reason: "provisioning key"})
	}
	dev, err := a.devices.Verify(ctx, id, r.Key)
	switch {
	case api.IsCode(err, api.Unauthorized):
		return deny(id, "not the device's current credential, nor a key"), nil
	case err != nil:
		return unavailable(ctx, id, err), nil
	}
	return Decision{Allow: true, Role: RoleDevice, DeviceID: id, CredentialID: dev.AuthorizationID, Generation: dev.Generation,
		Reason: "device's own credential"}, nil
}

// withGeneration adds the device item's generation to an allowing decision (a registration compares it).
func (a *Authorizer) withGeneration(ctx context.Context, d Decision) (Decision, error) {
	if a.devices == nil {
		return Decision{}, errors.New("authz: no device registry configured")
	}
	dev, err := a.devices.Get(ctx, d.DeviceID)
	if err != nil && !api.IsCode(err, api.NotFound) {
		return unavailable(ctx, d.DeviceID, err), nil
	}
	d.Generation = dev.Generation
	return d, nil
}

// unavailable lets the request through flagged: the function answers 503 JSON and does nothing else.
func unavailable(ctx context.Context, id string, err error) Decision {
	api.Logger(ctx).ErrorContext(ctx, "authorizer could not read the registry", slog.String("error", err.Error()))
	return Decision{Allow: true, DeviceID: id, Generation: -1, Refuse: api.RefuseRegistryUnavailable, Reason: "registry unavailable"}
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
	_, r.KeyInQuery = ev.QueryStringParameters["key"]
	return r
}

// keyOf reads `Authorization: Bearer <key>` (header names are case-insensitive).
func keyOf(ev events.APIGatewayV2CustomAuthorizerV2Request) string {
	for name, v := range ev.Headers {
		if strings.EqualFold(name, "authorization") {
			return api.BearerKey(v)
		}
	}
	return ""
}

// Handle is the Lambda handler: an allow or deny simple response (API Gateway answers 403 on deny). The decision
// travels to the function in the authorizer context (api.Caller.Context).
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
	if d.Allow && d.Refuse == "" {
		metrics.Emit(ctx, a.Metrics, "AuthAllowed", 1, metrics.Count, metrics.Dim{Name: "Role", Value: d.Role})
	} else {
		metrics.Emit(ctx, a.Metrics, "AuthDenied", 1, metrics.Count)
	}
	resp := events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: d.Allow}
	if d.Allow {
		resp.Context = d.Caller().Context()
	}
	return resp, nil
}
