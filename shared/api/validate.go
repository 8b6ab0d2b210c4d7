package api

import (
	"net/http"
	"regexp"
)

// deviceIDPattern is the only shape of device id the API accepts. It keeps ids safe to use as a Flux string, a tag
// value, a delete predicate and a URL segment without any escaping.
var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidDeviceID reports whether id is an acceptable device id.
func ValidDeviceID(id string) bool { return deviceIDPattern.MatchString(id) }

// CheckDeviceID returns a 400 Error naming the parameter when id is not acceptable.
func CheckDeviceID(id string) error {
	if !ValidDeviceID(id) {
		return InvalidParam("deviceId", "deviceId must match %s", deviceIDPattern.String())
	}
	return nil
}

// DeviceID reads and validates the {deviceId} path parameter and returns r with the id in its logger (every log
// line of a device route names the device); on an error it returns r unchanged.
func DeviceID(r *http.Request) (*http.Request, string, error) {
	id := r.PathValue("deviceId")
	if err := CheckDeviceID(id); err != nil {
		return r, "", err
	}
	return WithDevice(r, id), id, nil
}
