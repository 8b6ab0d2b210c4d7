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

// CredentialPrefix starts every device credential of the gateway mode: iotc_<deviceId>_<64 hex digits>. The
// device id inside lets the write gateway authenticate with one registry read (the id's record); the 64 hex digits
// are 256 random bits. The credential is not an InfluxDB token (InfluxDB answers 401 to it) and the registry keeps
// only its SHA-256.
const CredentialPrefix = "iotc_"

const credentialRandomHex = 64 // 32 bytes of crypto/rand

// newCredential returns a fresh credential for id and its hash as stored in the registry.
func newCredential(id string) (cred config.Secret, hash string) {
	b := make([]byte, credentialRandomHex/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics on a broken system source)
	c := CredentialPrefix + id + "_" + hex.EncodeToString(b)
	return config.Secret(c), hashCredential(c)
}

// hashCredential is the stored form: hex SHA-256. A fast hash is enough for 256 random bits (nothing to brute-force).
func hashCredential(c string) string {
	s := sha256.Sum256([]byte(c))
	return hex.EncodeToString(s[:])
}

// CredentialDeviceID returns the device id a credential names, or false when it does not have the credential's
// shape (then it is no credential at all: nothing needs to be read).
func CredentialDeviceID(cred string) (string, bool) {
	rest, ok := strings.CutPrefix(cred, CredentialPrefix)
	if !ok || len(rest) < credentialRandomHex+2 {
		return "", false
	}
	cut := len(rest) - credentialRandomHex
	random := rest[cut:]
	if rest[cut-1] != '_' || strings.Trim(random, "0123456789abcdef") != "" {
		return "", false
	}
	id := rest[:cut-1]
	return id, api.ValidDeviceID(id)
}

// matches compares a presented secret with the record in constant time: in gateway mode the credential's hash,
// in direct mode the device's InfluxDB token.
func (r *Registry) matches(d Device, presented string) bool {
	if r.cfg.Gateway() {
		want, err := hex.DecodeString(d.CredentialHash)
		got := sha256.Sum256([]byte(presented))
		return err == nil && len(want) == sha256.Size && subtle.ConstantTimeCompare(got[:], want) == 1
	}
	if d.Token.Empty() {
		return false
	}
	want, got := sha256.Sum256([]byte(d.Token.Reveal())), sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Verify returns the device's record when presented is its current credential (gateway mode) or InfluxDB token
// (direct mode): *api.Error Unauthorized for an unknown device or any other secret, the read's error (503/504/500)
// when the registry cannot be read. An eventually consistent read comes first; only a mismatch reads again
// consistently (a credential issued in the last second). The record's AuthorizationID identifies the credential.
func (r *Registry) Verify(ctx context.Context, id, presented string) (Device, error) {
	return r.verify(ctx, id, presented, r.Lookup)
}

func (r *Registry) verify(ctx context.Context, id, presented string, lookup func(context.Context, string, bool) (Device, error)) (Device, error) {
	if cid, ok := CredentialDeviceID(presented); r.cfg.Gateway() && (!ok || cid != id) {
		// not this device's credential by its shape: no registry read for it
		return Device{}, api.Errorf(api.Unauthorized, "not a credential of device %s", id)
	}
	var d Device
	var err error
	for _, consistent := range []bool{false, true} {
		d, err = lookup(ctx, id, consistent)
		if err == nil && r.matches(d, presented) {
			return d, nil
		}
		if err != nil && !api.IsCode(err, api.NotFound) {
			return Device{}, err
		}
	}
	return Device{}, &api.Error{Code: api.Unauthorized, Message: "the credential is not the device's current one", Err: err}
}

// Authenticate is how the write gateway checks a device credential: the credential names its device
// (iotc_<deviceId>_<random>), whose item holds the hash of the current credential (Verify's reads). It returns the
// device's record (Token empty) or an *api.Error: Unauthorized for anything that is not a current credential
// (malformed, unknown device, rotated out, deleted), StoreUnavailable or Timeout when the table cannot be read. It
// never logs or returns the credential.
func (r *Registry) Authenticate(ctx context.Context, credential string) (Device, error) {
	id, ok := CredentialDeviceID(credential)
	if !ok || !r.cfg.Gateway() {
		return Device{}, api.Errorf(api.Unauthorized, "not a device credential")
	}
	d, err := r.verify(ctx, id, credential, r.lookupWithSeries) // the series budget's item comes with it
	if err != nil {
		return Device{}, err
	}
	d.Token = ""
	return d, nil
}

// ForDevice is a device's own env call: presented must be the device's current credential and the same one its
// authorizer matched (credentialID), so a credential rotated out between the two never receives the new one. In
// gateway mode the answer echoes the presented credential (only its hash is stored); in direct mode a broken
// InfluxDB authorization is replaced, and only a replacement this call won is handed out.
func (r *Registry) ForDevice(ctx context.Context, id, presented, credentialID string) (Device, error) {
	d, err := r.Verify(ctx, id, presented)
	if err != nil {
		return Device{}, err
	}
	if credentialID == "" || d.AuthorizationID != credentialID {
		return Device{}, api.Errorf(api.Unauthorized, "the credential was replaced after this request was authorized")
	}
	if r.cfg.Gateway() {
		d.Token = config.Secret(presented)
		return d, nil
	}
	nd, mine, err := r.heal(ctx, d)
	switch {
	case err != nil:
		return Device{}, err
	case !mine:
		return Device{}, api.Errorf(api.Unauthorized, "the credential was replaced concurrently")
	}
	return nd, nil
}
