// Package deviceapi serves the device registry's routes (env, register, rotate, bulk, list, delete) over
// shared/registry, acting on the authorizer's decision (api.Caller).
package deviceapi

import (
	"net/http"
	"net/url"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// Routes, exactly as declared in template.yaml.
const (
	RouteEnv      = "GET /api/env/{deviceId}"
	RouteRegister = "POST /api/devices/{deviceId}"
	RouteRotate   = "POST /api/devices/{deviceId}/rotate"
	RouteDelete   = "DELETE /api/devices/{deviceId}"
)

// Service serves the registry routes.
type Service struct {
	reg *registry.Registry
	cfg config.Config
	now func() time.Time
}

// NewService builds the service over a registry.
func NewService(reg *registry.Registry) *Service {
	return &Service{reg: reg, cfg: reg.Config(), now: time.Now}
}

// Routes serves every device route; a function narrows them to its own with Only.
func (s *Service) Routes() *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc(RouteEnv, s.Env) // Env acts on the caller's role itself: operator, provisioning or the device
	mux.HandleFunc(RouteRegister, api.Require(api.RoleOperator, s.Register))
	mux.HandleFunc(RouteRotate, api.Require(api.RoleOperator, s.Rotate))
	mux.HandleFunc(RouteDelete, api.Require(api.RoleOperator, s.Delete))
	mux.HandleFunc(RouteBulk, api.Require(api.RoleOperator, s.Bulk))
	return mux
}

// Env is GET /api/env/{deviceId}, the device's configuration for the caller's role (README.md): the operator's
// registers an unknown device, a provisioning key's only creates one, and a device gets its own with the
// credential it presented, re-checked against the item.
func (s *Service) Env(w http.ResponseWriter, r *http.Request) {
	r, id, q, text, err := s.configInput(r, "register")
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	register, err := boolParam(q, "register", true)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	d, created, err := s.env(r, api.CallerOf(r.Context()), id, register)
	if err != nil {
		if !register && api.IsCode(err, api.NotFound) {
			err = notRegistered(id, err)
		}
		api.WriteError(w, r, err)
		return
	}
	if created {
		api.Logger(r.Context()).InfoContext(r.Context(), "device registered", "authorizationId", d.AuthorizationID)
	}
	writeConfig(w, http.StatusOK, s.envConfig(r, d, created), text)
}

func notRegistered(id string, cause error) error {
	return &api.Error{Code: api.Forbidden, Extra: map[string]any{"id": id, "registered": false}, Err: cause}
}

func (s *Service) env(r *http.Request, c api.Caller, id string, register bool) (registry.Device, bool, error) {
	ctx := r.Context()
	access, err := c.MayConfigure(id)
	switch {
	case err != nil:
		return registry.Device{}, false, err
	case access == api.EnvOwn:
		d, err := s.reg.ForDevice(ctx, id, api.BearerKey(r.Header.Get("Authorization")), c.CredentialID)
		return d, false, err
	case access == api.EnvCreateOnly && !register:
		return registry.Device{}, false, notRegistered(id, nil)
	case access == api.EnvEnsure:
		return s.reg.Ensure(ctx, id, registry.Intent{Register: register, Generation: c.Generation})
	}
	d, created, err := s.reg.Ensure(ctx, id, registry.Intent{Register: true, CreateOnly: true, Generation: c.Generation})
	if err == nil && !created {
		err = api.Errorf(api.Forbidden, "device %s is already registered", id)
	}
	if c := api.CodeOf(err); c == api.Conflict || c == api.NotFound {
		// whatever else happened, this caller did not create the device
		err = &api.Error{Code: api.Forbidden, Message: "device " + id + " was not registered by this request", Err: err}
	}
	return d, created, err
}

// Register is POST /api/devices/{deviceId} (operator): 201 + configuration when new, 200 when it already exists
// (in gateway mode without a credential: only its hash is stored; rotate for a new one).
func (s *Service) Register(w http.ResponseWriter, r *http.Request) {
	r, id, text, c, err := s.operatorInput(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	d, created, err := s.reg.Ensure(r.Context(), id, registry.Intent{Register: true, Generation: c.Generation})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		api.Logger(r.Context()).InfoContext(r.Context(), "device registered", "authorizationId", d.AuthorizationID)
	}
	writeConfig(w, status, s.envConfig(r, d, created), text)
}

// Rotate is POST /api/devices/{deviceId}/rotate (operator): a new credential; the old one stops working. In gateway
// mode the losers of concurrent rotations get 409 (the new credential went to the winner only).
func (s *Service) Rotate(w http.ResponseWriter, r *http.Request) {
	r, id, text, _, err := s.operatorInput(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	d, won, err := s.reg.Rotate(r.Context(), id)
	if err == nil && !won && s.cfg.Gateway() {
		err = api.Errorf(api.Conflict, "a concurrent rotation of %s won and holds the new credential; rotate again", id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.Logger(r.Context()).InfoContext(r.Context(), "device credential rotated", "authorizationId", d.AuthorizationID)
	writeConfig(w, http.StatusOK, s.envConfig(r, d, false), text)
}

// operatorInput reads the caller (the operator: Mux requires it) and the id and ?accept of register and rotate.
func (s *Service) operatorInput(r *http.Request) (*http.Request, string, bool, api.Caller, error) {
	c := api.CallerOf(r.Context())
	r, id, _, text, err := s.configInput(r)
	return r, id, text, c, err
}

// Delete is DELETE /api/devices/{deviceId}[?data=true]: 204, or 404 for an unknown device.
func (s *Service) Delete(w http.ResponseWriter, r *http.Request) {
	r, id, q, err := s.input(r, "data")
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	data, err := boolParam(q, "data", false)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := s.reg.Delete(r.Context(), id, data); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.Logger(r.Context()).InfoContext(r.Context(), "device deleted", "withData", data)
	w.WriteHeader(http.StatusNoContent)
}

// input validates the device id (into the request's log context) and the query (only the named parameters, each
// at most once).
func (s *Service) input(r *http.Request, allowed ...string) (*http.Request, string, url.Values, error) {
	r, id, err := api.DeviceID(r)
	if err != nil {
		return r, "", nil, err
	}
	q, err := api.Query(r, allowed...)
	return r, id, q, err
}

// configInput reads what every route answering a device configuration takes: the device id (into the request's
// log context), the query (accept plus allowed), and whether the answer is text.
func (s *Service) configInput(r *http.Request, allowed ...string) (*http.Request, string, url.Values, bool, error) {
	r, id, q, err := s.input(r, append(allowed, "accept")...)
	if err != nil {
		return r, "", nil, false, err
	}
	text, err := wantsText(r, q)
	return r, id, q, text, err
}

// boolParam reads an optional "true"/"false" parameter.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	switch v[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, api.InvalidParam(name, "%s must be true or false", name)
}

// wantsText reports whether the caller asked for `key: value` lines (?accept=text/plain or Accept: text/plain).
func wantsText(r *http.Request, q url.Values) (bool, error) {
	if v, ok := q["accept"]; ok {
		switch v[0] {
		case "text/plain":
			return true, nil
		case "application/json":
			return false, nil
		}
		return false, api.InvalidParam("accept", "accept must be text/plain or application/json")
	}
	return api.NegotiateType(r.Header, "application/json", "text/plain") == "text/plain", nil
}
