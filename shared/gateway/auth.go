package gateway

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// Authenticator resolves a device credential to the device's id: api.Unauthorized for an unknown, rotated or
// deleted credential, api.Unavailable when the registry cannot be read.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (deviceID string, err error)
}

// CredentialChecker is the device registry's check of a credential (registry.(*Registry).Authenticate):
// api.Unauthorized for anything but a device's current credential, api.Unavailable when it cannot read.
type CredentialChecker interface {
	Authenticate(ctx context.Context, credential string) (registry.Device, error)
}

// RegistryAuthenticator authenticates with the device registry.
func RegistryAuthenticator(c CredentialChecker) Authenticator { return registryAuth{c} }

type registryAuth struct{ c CredentialChecker }

func (a registryAuth) Authenticate(ctx context.Context, cred string) (string, error) {
	d, err := a.c.Authenticate(ctx, cred)
	if err != nil {
		return "", err
	}
	return d.ID, nil
}

// MaxAuthCacheTTL bounds how long a credential stays accepted after it was rotated or deleted.
const MaxAuthCacheTTL = 60 * time.Second

// maxCredential bounds what is hashed and looked up (a device credential is 43-64 characters).
const maxCredential = 512

// credential reads `Authorization: Token <t>` or `Bearer <t>` (the schemes the InfluxDB client libraries send).
func credential(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !(strings.EqualFold(scheme, "Token") || strings.EqualFold(scheme, "Bearer")) {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) <= maxCredential
}

// authCache remembers the registry's answer per credential (by its SHA-256, never the credential itself) for ttl,
// a refusal for negTTL, so a device writing in a loop costs one registry lookup per ttl and a rotated or deleted
// credential stops working at most ttl later. It holds at most max entries: when full, expired entries go, and if
// none has expired, all of them (the next writes look up again).
type authCache struct {
	ttl, negTTL time.Duration
	max         int
	now         func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]authEntry
}

type authEntry struct {
	device  string // "" for a refused credential
	expires time.Time
}

func newAuthCache(ttl time.Duration, max int, now func() time.Time) *authCache {
	ttl = min(ttl, MaxAuthCacheTTL)
	return &authCache{ttl: ttl, negTTL: min(ttl, 5*time.Second), max: max, now: now, m: map[[sha256.Size]byte]authEntry{}}
}

// authenticate answers from the cache or asks a once (at most one registry lookup per write).
func (c *authCache) authenticate(ctx context.Context, a Authenticator, cred string) (string, error) {
	key := sha256.Sum256([]byte(cred))
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.device == "" {
			return "", unauthorized()
		}
		return e.device, nil
	}
	id, err := a.Authenticate(ctx, cred)
	switch {
	case err == nil && api.ValidDeviceID(id):
		c.put(key, authEntry{device: id, expires: now.Add(c.ttl)})
		return id, nil
	case err == nil:
		return "", api.Errorf(api.Internal, "the registry answered an invalid device id")
	case api.IsCode(err, api.Unauthorized):
		c.put(key, authEntry{expires: now.Add(c.negTTL)})
		return "", unauthorized()
	default:
		return "", err // not cached: the next write asks again
	}
}

func (c *authCache) put(key [sha256.Size]byte, e authEntry) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		now := c.now()
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[key] = e
}

// unauthorized is InfluxDB's answer to a missing or wrong token.
func unauthorized() error { return api.Errorf(api.Unauthorized, "unauthorized access") }
