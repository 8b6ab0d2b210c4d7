package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Require runs the route's handler for its role and the operator only; every other decision is a 403 before the
// handler runs.
func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		require, role string
		want          int
	}{
		{api.RoleOperator, api.RoleOperator, http.StatusNoContent},
		{api.RoleOperator, api.RoleProvisioning, http.StatusForbidden},
		{api.RoleOperator, api.RoleDevice, http.StatusForbidden},
		{api.RoleOperator, "", http.StatusForbidden},
		{api.RoleOperator, "Operator", http.StatusForbidden},
		{api.RoleDevice, api.RoleDevice, http.StatusNoContent},
		{api.RoleDevice, api.RoleOperator, http.StatusNoContent},
		{api.RoleDevice, api.RoleProvisioning, http.StatusForbidden},
		{api.RoleDevice, api.RoleOpen, http.StatusForbidden},
		{api.RoleDevice, "", http.StatusForbidden},
		{"", "", http.StatusForbidden},
	} {
		t.Run(tc.require+" as "+tc.role, func(t *testing.T) {
			ran := false
			h := api.Require(tc.require, func(w http.ResponseWriter, r *http.Request) {
				ran = true
				w.WriteHeader(http.StatusNoContent)
			})
			r := httptest.NewRequest("GET", "/api/devices", nil)
			r = r.WithContext(api.WithCaller(r.Context(), api.Caller{Role: tc.role}))
			w := httptest.NewRecorder()
			h(w, r)
			if w.Code != tc.want || ran != (tc.want == http.StatusNoContent) {
				t.Errorf("Require(%q) as %q: got %d (handler ran: %v), want %d", tc.require, tc.role, w.Code, ran, tc.want)
			}
		})
	}
}

// MayRead: the operator reads any device's data; a device only its own, with the credential that is still current.
func TestMayRead(t *testing.T) {
	dev := func(id, cred string) api.Caller {
		return api.Caller{Role: api.RoleDevice, DeviceID: id, CredentialID: cred}
	}
	for _, tc := range []struct {
		name   string
		c      api.Caller
		id     string
		cred   string
		wantOK bool
		want   api.Code
	}{
		{"operator, any device", api.Caller{Role: api.RoleOperator}, "d1", "c1", true, ""},
		{"device, its own data", dev("d1", "c1"), "d1", "c1", true, ""},
		{"device, another device's data", dev("d1", "c1"), "d2", "c1", false, api.Unauthorized},
		{"device, rotated credential", dev("d1", "old"), "d1", "c1", false, api.Unauthorized},
		{"device, no credential id", dev("d1", ""), "d1", "", false, api.Unauthorized},
		{"provisioning key", api.Caller{Role: api.RoleProvisioning, DeviceID: "d1"}, "d1", "c1", false, api.Forbidden},
		{"no decision", api.Caller{}, "d1", "c1", false, api.Forbidden},
	} {
		err := tc.c.MayRead(tc.id, tc.cred)
		if (err == nil) != tc.wantOK || (err != nil && !api.IsCode(err, tc.want)) {
			t.Errorf("%s: MayRead(%q, %q) = %v, want ok %v / %s", tc.name, tc.id, tc.cred, err, tc.wantOK, tc.want)
		}
	}
}

// MayConfigure: the operator configures any device; the open route, a provisioning key and a device only the id
// they were authorized for, each with its own access.
func TestMayConfigure(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    api.Caller
		id   string
		want api.EnvAccess
		code api.Code
	}{
		{"operator, any device", api.Caller{Role: api.RoleOperator}, "d1", api.EnvEnsure, ""},
		{"open route, its id", api.Caller{Role: api.RoleOpen, DeviceID: "d1"}, "d1", api.EnvEnsure, ""},
		{"provisioning key, its id", api.Caller{Role: api.RoleProvisioning, DeviceID: "d1"}, "d1", api.EnvCreateOnly, ""},
		{"device, its own", api.Caller{Role: api.RoleDevice, DeviceID: "d1", CredentialID: "c1"}, "d1", api.EnvOwn, ""},
		{"device, another id", api.Caller{Role: api.RoleDevice, DeviceID: "d1", CredentialID: "c1"}, "d2", 0, api.Forbidden},
		{"provisioning key, another id", api.Caller{Role: api.RoleProvisioning, DeviceID: "d1"}, "d2", 0, api.Forbidden},
		{"unknown role", api.Caller{Role: "admin", DeviceID: "d1"}, "d1", 0, api.Forbidden},
		{"no decision", api.Caller{}, "d1", 0, api.Forbidden},
	} {
		got, err := tc.c.MayConfigure(tc.id)
		if got != tc.want || (err == nil) != (tc.code == "") || (err != nil && !api.IsCode(err, tc.code)) {
			t.Errorf("%s: MayConfigure(%q) = %v, %v; want %v, %s", tc.name, tc.id, got, err, tc.want, tc.code)
		}
	}
}
