package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// Roles the authorizer decides on; they reach the functions in requestContext.authorizer.lambda.
const (
	RoleOperator     = "operator"     // every route
	RoleProvisioning = "provisioning" // may create a device on GET /api/env/{id}, nothing else
	RoleDevice       = "device"       // its own env, measurements and summary, with its current credential
	RoleOpen         = "open"         // DEVICE_AUTH=none on the env route
)

// Refusals the authorizer hands to the function instead of denying: API Gateway can only answer a denial with
// 403 {"message":"Forbidden"} (and an authorizer failure with 500), while these deserve a clear JSON answer.
const (
	RefuseKeyInQuery          = "key_in_query"         // 400: keys belong in the Authorization header only
	RefuseRegistryUnavailable = "registry_unavailable" // 503: the authorizer could not read the registry
)

// Caller is the authorizer's decision as a function receives it. Functions act on it and never decide again: the
// role says what the caller may do, CredentialID which registry record (credential) a device was matched
// against, Generation the device item's generation when the request was authorized (a registration checks it so
// no request authorized before a delete registers the device again). It never holds a secret.
type Caller struct {
	Role         string
	DeviceID     string
	CredentialID string
	Generation   int64 // -1: not read by the authorizer (routes that cannot register)
	Refuse       string
}

// MayRead says whether the decision covers reading device id's data, whose current credential is credentialID: the
// operator's does, and the device's own while the credential it was matched with is still the current one.
func (c Caller) MayRead(id, credentialID string) error {
	switch {
	case c.Role == RoleOperator:
		return nil
	case c.Role == RoleDevice && c.DeviceID == id && c.CredentialID != "" && c.CredentialID == credentialID:
		return nil
	case c.Role == RoleDevice:
		return Errorf(Unauthorized, "the credential is not the device's current one")
	}
	return Errorf(Forbidden, "this route is not allowed for this caller")
}

// EnvAccess is what the decision lets a caller do with a device's configuration (GET /api/env/{id}).
type EnvAccess int

const (
	EnvEnsure     EnvAccess = iota + 1 // read it, registering an unknown device when asked (operator, open)
	EnvCreateOnly                      // register a new device only (the provisioning key)
	EnvOwn                             // the device's own, re-checked against the credential it presented
)

// MayConfigure says what the decision covers on device id's configuration: the operator's and the open route's
// any device, a provisioning key's the creation of a new one, a device's its own; anything else is Forbidden.
func (c Caller) MayConfigure(id string) (EnvAccess, error) {
	switch {
	case c.Role == RoleOperator:
		return EnvEnsure, nil
	case c.DeviceID != id:
		return 0, Errorf(Forbidden, "this caller was not authorized for device %s", id)
	case c.Role == RoleOpen:
		return EnvEnsure, nil
	case c.Role == RoleProvisioning:
		return EnvCreateOnly, nil
	case c.Role == RoleDevice:
		return EnvOwn, nil
	}
	return 0, Errorf(Forbidden, "this route is not allowed for this caller")
}

// Context is the caller as the authorizer's simple-response context (strings only: API Gateway passes strings,
// numbers and booleans, and a number would come back as a float).
func (c Caller) Context() map[string]any {
	m := map[string]any{"role": c.Role, "generation": strconv.FormatInt(c.Generation, 10)}
	if c.DeviceID != "" {
		m["deviceId"] = c.DeviceID
	}
	if c.CredentialID != "" {
		m["credentialId"] = c.CredentialID
	}
	if c.Refuse != "" {
		m["refuse"] = c.Refuse
	}
	return m
}

// CallerFromContext reads requestContext.authorizer.lambda; a missing or malformed value leaves the field empty
// (no role: the function refuses).
func CallerFromContext(m map[string]any) Caller {
	s := func(k string) string {
		v, _ := m[k].(string)
		return v
	}
	c := Caller{Role: s("role"), DeviceID: s("deviceId"), CredentialID: s("credentialId"), Refuse: s("refuse"), Generation: -1}
	if n, err := strconv.ParseInt(s("generation"), 10, 64); err == nil && n >= 0 {
		c.Generation = n
	}
	return c
}

type callerKey struct{}

// WithCaller stores c in ctx (Handler does it from the API Gateway event; tests put their own decision).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the request's caller; without an authorizer decision the role is "".
func CallerOf(ctx context.Context) Caller {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c
	}
	return Caller{Generation: -1}
}

// withCaller puts the authorizer's decision from the API Gateway event into the request's context, unless one is
// there already (a test's).
func withCaller(r *http.Request) *http.Request {
	ctx := r.Context()
	if _, ok := ctx.Value(callerKey{}).(Caller); ok {
		return r
	}
	gw, ok := core.GetAPIGatewayV2ContextFromContext(ctx)
	if !ok || gw.Authorizer == nil || gw.Authorizer.Lambda == nil {
		return r
	}
	return r.WithContext(WithCaller(ctx, CallerFromContext(gw.Authorizer.Lambda)))
}

// refusal is the answer to an authorizer's refusal flag, or nil.
func refusal(c Caller) error {
	switch c.Refuse {
	case "":
		return nil
	case RefuseKeyInQuery:
		return InvalidParam("key", "keys are accepted only in the Authorization header (Bearer <key>), never in the URL; nothing was done")
	case RefuseRegistryUnavailable:
		return Errorf(StoreUnavailable, "the device registry could not be read")
	}
	return Wrap(Internal, fmt.Errorf("unknown authorizer refusal %q", c.Refuse), "authorizer refusal")
}

// Require is how a route states the role it needs, where it is mounted: h runs only for a caller the authorizer
// decided has that role, or for the operator (who may use every route); any other caller gets 403 first.
func Require(role string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := CallerOf(r.Context()); c.Role == "" || (c.Role != role && c.Role != RoleOperator) {
			WriteError(w, r, Errorf(Forbidden, "this route is not allowed for this caller"))
			return
		}
		h(w, r)
	}
}

// BearerKey returns the key of an `Authorization: Bearer <key>` header value ("" for any other scheme). Keys are
// accepted only there: never from the URL, which ends up in histories and proxy logs.
func BearerKey(header string) string {
	scheme, key, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(key)
}
