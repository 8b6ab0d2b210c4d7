package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
)

// CredentialPrefix starts every gateway-mode device credential, iotc_<deviceId>_<64 hex digits>: the id inside lets
// the write gateway authenticate with one read. It is no InfluxDB token, and only its SHA-256 is stored.
const CredentialPrefix = "iotc_"

const credentialRandomHex = 64 // 32 bytes of crypto/rand

// newCredential returns a fresh credential for id and the hash stored for it.
func newCredential(id string) (cred config.Secret, hash string) {
	b := make([]byte, credentialRandomHex/2)
	_, _ = rand.Read(b) // never fails: it panics on a broken system source
	c := CredentialPrefix + id + "_" + hex.EncodeToString(b)
	return config.Secret(c), hashCredential(c)
}

// hashCredential is the stored form; a fast hash is enough for 256 random bits.
func hashCredential(c string) string {
	s := sha256.Sum256([]byte(c))
	return hex.EncodeToString(s[:])
}

// CredentialDeviceID returns the device id a credential names, or false when it does not have a credential's shape
// (then nothing needs to be read).
func CredentialDeviceID(cred string) (string, bool) {
	rest, ok := strings.CutPrefix(cred, CredentialPrefix)
	if !ok || len(rest) < credentialRandomHex+2 {
		return "", false
	}
	cut := len(rest) - credentialRandomHex
	if rest[cut-1] != '_' || strings.Trim(rest[cut:], "0123456789abcdef") != "" {
		return "", false
	}
	return rest[:cut-1], api.ValidDeviceID(rest[:cut-1])
}

// matches compares a presented secret with the item's in constant time: the credential's hash (gateway mode) or
// the InfluxDB token (direct mode).
func (r *Registry) matches(d Device, presented string) bool {
	want := d.CredentialHash
	if !r.cfg.Gateway() {
		if d.Token.Empty() {
			return false
		}
		want = hashCredential(d.Token.Reveal())
	}
	return subtle.ConstantTimeCompare([]byte(hashCredential(presented)), []byte(want)) == 1
}

// Verify returns the device's record when presented is its current credential (gateway mode) or InfluxDB token
// (direct mode). Anything else is Unauthorized; a failed read is its own error (503, 504, 500).
func (r *Registry) Verify(ctx context.Context, id, presented string) (Device, error) {
	if cid, ok := CredentialDeviceID(presented); r.cfg.Gateway() && (!ok || cid != id) {
		return Device{}, api.Errorf(api.Unauthorized, "not a credential of device %s", id) // no read for it
	}
	var d Device
	var err error
	for _, consistent := range []bool{false, true} { // the second read finds a credential of the last second
		d, err = r.read(ctx, id, consistent)
		if err == nil && r.matches(d, presented) {
			return d, nil
		}
		if err != nil && !api.IsCode(err, api.NotFound) {
			return Device{}, err
		}
	}
	return Device{}, &api.Error{Code: api.Unauthorized, Err: err, Message: "the credential is not the device's current one"}
}

// Authenticate is the write gateway's check of a credential, which names its device: Verify, the record returned
// with its series item and without the token. It never logs or returns the credential.
func (r *Registry) Authenticate(ctx context.Context, credential string) (Device, error) {
	id, ok := CredentialDeviceID(credential)
	if !ok || !r.cfg.Gateway() {
		return Device{}, api.Errorf(api.Unauthorized, "not a device credential")
	}
	d, err := r.Verify(ctx, id, credential)
	d.Token = ""
	return d, err
}

// ForDevice is a device's own env call: presented must be its current credential and the one its authorizer
// matched (credentialID), so a credential rotated out in between never receives the new one. Gateway mode echoes
// the presented credential; direct mode heals the authorization and hands out only a replacement this call won.
func (r *Registry) ForDevice(ctx context.Context, id, presented, credentialID string) (Device, error) {
	d, err := r.Verify(ctx, id, presented)
	switch {
	case err != nil:
		return Device{}, err
	case credentialID == "" || d.AuthorizationID != credentialID:
		return Device{}, api.Errorf(api.Unauthorized, "the credential was replaced after this request was authorized")
	case r.cfg.Gateway():
		d.Token = config.Secret(presented)
		return d, nil
	}
	d, mine, err := r.heal(ctx, d)
	if err == nil && !mine {
		err = api.Errorf(api.Unauthorized, "the credential was replaced concurrently")
	}
	if err != nil {
		return Device{}, err
	}
	return d, nil
}
