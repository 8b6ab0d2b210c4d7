package registry

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
)

// devices is what the HTTP handlers need from the registry.
type devices interface {
	Ensure(ctx context.Context, id string, register bool) (Device, bool, error)
	Rotate(ctx context.Context, id string) (Device, error)
	List(ctx context.Context) ([]Device, error)
	Delete(ctx context.Context, id string, withData bool) error
}

var _ devices = (*Registry)(nil)

// Routes, exactly as declared in template.yaml.
const (
	RouteEnv      = "GET /api/env/{deviceId}"
	RouteRegister = "POST /api/devices/{deviceId}"
	RouteRotate   = "POST /api/devices/{deviceId}/rotate"
	RouteList     = "GET /api/devices"
	RouteDelete   = "DELETE /api/devices/{deviceId}"
)

// Handlers serves the registry routes.
type Handlers struct {
	reg devices
	cfg config.Config
	now func() time.Time
}

// NewHandlers builds the handlers over a registry.
func NewHandlers(reg *Registry) *Handlers {
	return &Handlers{reg: reg, cfg: reg.Config(), now: time.Now}
}

// Mux serves the given routes (all of them when none is named); each function wires only its own.
func (h *Handlers) Mux(routes ...string) *api.Mux {
	all := map[string]http.HandlerFunc{
		RouteEnv: h.Env, RouteRegister: h.Register, RouteRotate: h.Rotate, RouteList: h.List, RouteDelete: h.Delete,
	}
	if len(routes) == 0 {
		routes = []string{RouteEnv, RouteRegister, RouteRotate, RouteList, RouteDelete}
	}
	mux := api.NewMux()
	for _, rt := range routes {
		mux.HandleFunc(rt, all[rt])
	}
	return mux
}

// EnvConfig is the iot-center-v2 device configuration, field order as the original answers it.
type EnvConfig struct {
	InfluxURL            string  `json:"influx_url"`
	InfluxOrg            string  `json:"influx_org"`
	InfluxToken          string  `json:"influx_token"`
	InfluxBucket         string  `json:"influx_bucket"`
	ID                   string  `json:"id"`
	DefaultLon           float64 `json:"default_lon"`
	DefaultLat           float64 `json:"default_lat"`
	MeasurementInterval  int     `json:"measurement_interval"`
	NewlyRegistered      bool    `json:"newlyRegistered"`
	CreatedAt            string  `json:"createdAt"`
	UpdatedAt            string  `json:"updatedAt"`
	ServerTime           string  `json:"serverTime"`
	ConfigurationRefresh int     `json:"configuration_refresh"`
	// WriteEndpoint is the base URL of the InfluxDB write API the device writes to (iot-center-v2 clients pass it to
	// their InfluxDB client, falling back to the server's /influx proxy when empty): the same as influx_url here.
	WriteEndpoint string `json:"write_endpoint"`
}

// Text renders the configuration as `key: value` lines (the Arduino client's format), same keys and order.
func (c EnvConfig) Text() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	lines := [][2]string{
		{"influx_url", c.InfluxURL}, {"influx_org", c.InfluxOrg}, {"influx_token", c.InfluxToken},
		{"influx_bucket", c.InfluxBucket}, {"id", c.ID}, {"default_lon", f(c.DefaultLon)}, {"default_lat", f(c.DefaultLat)},
		{"measurement_interval", strconv.Itoa(c.MeasurementInterval)}, {"newlyRegistered", strconv.FormatBool(c.NewlyRegistered)},
		{"createdAt", c.CreatedAt}, {"updatedAt", c.UpdatedAt}, {"serverTime", c.ServerTime},
		{"configuration_refresh", strconv.Itoa(c.ConfigurationRefresh)}, {"write_endpoint", c.WriteEndpoint},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l[0] + ": " + l[1] + "\n")
	}
	return b.String()
}

func (h *Handlers) envConfig(d Device, created bool) EnvConfig {
	c := EnvConfig{
		InfluxURL: h.cfg.InfluxPublicURL, InfluxOrg: h.cfg.Org, InfluxToken: d.Token.Reveal(), InfluxBucket: h.cfg.Bucket,
		ID: d.ID, DefaultLat: h.cfg.DefaultLat, DefaultLon: h.cfg.DefaultLon, MeasurementInterval: h.cfg.MeasurementInterval,
		NewlyRegistered: created, CreatedAt: rfc3339(d.CreatedAt), UpdatedAt: rfc3339(d.UpdatedAt),
		ServerTime: serverTime(h.now()), ConfigurationRefresh: h.cfg.ConfigurationRefresh,
	}
	c.WriteEndpoint = c.InfluxURL
	return c
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// serverTime formats t as JavaScript's toISOString() does (the original's serverTime): UTC, exactly 3 fraction digits.
func serverTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// writeConfig answers the configuration as JSON, or as text lines when the caller asks for text/plain.
func writeConfig(w http.ResponseWriter, status int, c EnvConfig, text bool) {
	if !text {
		api.WriteJSON(w, status, c)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(c.Text()))
}

// Env is GET /api/env/{deviceId}: the device's configuration, registering it unless ?register=false.
func (h *Handlers) Env(w http.ResponseWriter, r *http.Request) {
	r, id, q, text, err := h.configInput(r, "register")
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	register, err := boolParam(q, "register", true)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	d, created, err := h.reg.Ensure(r.Context(), id, register)
	if err != nil {
		if !register && api.IsCode(err, api.NotFound) {
			err = &api.Error{Code: api.Forbidden, Extra: map[string]any{"id": id, "registered": false}, Err: err}
		}
		api.WriteError(w, r, err)
		return
	}
	if created {
		api.Logger(r.Context()).InfoContext(r.Context(), "device registered", "authorizationId", d.AuthorizationID)
	}
	writeConfig(w, http.StatusOK, h.envConfig(d, created), text)
}

// Register is POST /api/devices/{deviceId}: 201 + configuration when new, 200 when it already exists.
func (h *Handlers) Register(w http.ResponseWriter, r *http.Request) {
	r, id, _, text, err := h.configInput(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	d, created, err := h.reg.Ensure(r.Context(), id, true)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		api.Logger(r.Context()).InfoContext(r.Context(), "device registered", "authorizationId", d.AuthorizationID)
	}
	writeConfig(w, status, h.envConfig(d, created), text)
}

// Rotate is POST /api/devices/{deviceId}/rotate: a new token; the old one stops working.
func (h *Handlers) Rotate(w http.ResponseWriter, r *http.Request) {
	r, id, _, text, err := h.configInput(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	d, err := h.reg.Rotate(r.Context(), id)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.Logger(r.Context()).InfoContext(r.Context(), "device token rotated", "authorizationId", d.AuthorizationID)
	writeConfig(w, http.StatusOK, h.envConfig(d, false), text)
}

// DeviceInfo is one entry of GET /api/devices: never a token.
type DeviceInfo struct {
	DeviceID        string `json:"deviceId"`
	CreatedAt       string `json:"createdAt"`
	UpdatedAt       string `json:"updatedAt"`
	AuthorizationID string `json:"authorizationId"`
}

// List is GET /api/devices.
func (h *Handlers) List(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r.URL.Query()); err != nil {
		api.WriteError(w, r, err)
		return
	}
	devs, err := h.reg.List(r.Context())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := make([]DeviceInfo, 0, len(devs))
	for _, d := range devs {
		out = append(out, DeviceInfo{DeviceID: d.ID, CreatedAt: rfc3339(d.CreatedAt), UpdatedAt: rfc3339(d.UpdatedAt),
			AuthorizationID: d.AuthorizationID})
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// Delete is DELETE /api/devices/{deviceId}[?data=true]: 204, or 404 for an unknown device.
func (h *Handlers) Delete(w http.ResponseWriter, r *http.Request) {
	id, q, err := h.input(r, "data")
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	r = api.WithDevice(r, id)
	data, err := boolParam(q, "data", false)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := h.reg.Delete(r.Context(), id, data); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.Logger(r.Context()).InfoContext(r.Context(), "device deleted", "withData", data)
	w.WriteHeader(http.StatusNoContent)
}

// input validates the device id and the query (only the named parameters, each at most once).
func (h *Handlers) input(r *http.Request, allowed ...string) (string, url.Values, error) {
	id, err := api.DeviceID(r)
	if err != nil {
		return "", nil, err
	}
	q, perr := url.ParseQuery(r.URL.RawQuery)
	if perr != nil {
		return "", nil, api.InvalidParam("query", "the query string is malformed")
	}
	if err := onlyParams(q, allowed...); err != nil {
		return "", nil, err
	}
	return id, q, nil
}

// configInput reads what every route answering a device configuration takes: the device id (into the request's
// log context), the query (accept plus allowed), and whether the answer is text.
func (h *Handlers) configInput(r *http.Request, allowed ...string) (*http.Request, string, url.Values, bool, error) {
	id, q, err := h.input(r, append(allowed, "accept")...)
	if err != nil {
		return r, "", nil, false, err
	}
	r = api.WithDevice(r, id)
	text, err := wantsText(r, q)
	return r, id, q, text, err
}

// keyParam is the authorizer's alternative to the Authorization header (shared/authz); handlers ignore its value.
const keyParam = "key"

// onlyParams refuses unknown and repeated query parameters: a hostile query never reaches the registry.
func onlyParams(q url.Values, allowed ...string) error {
	for k, vs := range q {
		ok := k == keyParam
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			if len(k) > 32 || !api.ValidDeviceID(k) {
				return api.InvalidParam("query", "unknown query parameter")
			}
			return api.InvalidParam(k, "unknown query parameter %s", k)
		}
		if len(vs) != 1 {
			return api.InvalidParam(k, "%s must be given once", k)
		}
	}
	return nil
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
