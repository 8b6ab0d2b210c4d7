package gateway

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Credentials checks a credential the gateway has not cached: the device registry (registry.(*Registry).Authenticate,
// one read of the device's item) or a test's fake. api.Unauthorized for anything but a device's current credential,
// a 503 code when the store cannot be read.
type Credentials interface {
	Authenticate(ctx context.Context, credential string) (registry.Device, error)
}

// Revocation timing. A rotated or deleted credential is refused within RevocationWindow: an accepted credential is
// reused only while the revocations since it was verified are known to within RevocationWindow.
const (
	// RevocationWindow bounds how long a rotated or deleted credential may still be accepted (60 s, less a margin
	// for the store's replication and the registry's write of the device after its revocation item).
	RevocationWindow = 50 * time.Second
	// DefaultRevocationCheck is how often (at most, on a request) an instance reads the revocation items.
	DefaultRevocationCheck = 5 * time.Second
	// maxRevocationGap is the longest gap whose revocation items are read; after a longer one (an instance frozen
	// between invocations runs no timer) the whole cache is dropped instead.
	maxRevocationGap = 10 * time.Minute
	// DefaultAuthCacheTTL and MaxAuthCacheTTL: how long an accepted credential is reused without reading the
	// device again (revocations end it earlier).
	DefaultAuthCacheTTL = 15 * time.Minute
	MaxAuthCacheTTL     = time.Hour
)

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

// authCache remembers accepted credentials (by their SHA-256) for ttl and refusals for negTTL. At most every, it
// reads the registry's revocation items since its last check and forgets the devices they name; past max entries
// the expired go, or all of them if none has expired.
type authCache struct {
	ttl, negTTL, every time.Duration
	max                int
	now                func() time.Time
	table              *store.Table
	// verified, when set, receives every device the registry accepted (the series book primes itself from it).
	verified func(registry.Device)

	reading   sync.Mutex // held while the revocation items are read
	mu        sync.Mutex // guards what follows
	m         map[[sha256.Size]byte]authEntry
	checked   time.Time // revocations are known up to this time
	attempted time.Time // last attempt to read them (successful or not)
}

type authEntry struct {
	device   string    // "" for a refused credential
	verified time.Time // when the registry accepted (or refused) it
}

func newAuthCache(table *store.Table, ttl, every time.Duration, max int, now func() time.Time) *authCache {
	ttl = min(ttl, MaxAuthCacheTTL)
	return &authCache{ttl: ttl, negTTL: min(ttl, 5*time.Second), every: every, max: max, now: now, table: table,
		m: map[[sha256.Size]byte]authEntry{}, checked: now()}
}

// authenticate answers from the cache (when the credential's revocation state is known to within the window) or
// asks creds once.
func (c *authCache) authenticate(ctx context.Context, creds Credentials, cred string) (string, error) {
	key := sha256.Sum256([]byte(cred))
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	switch {
	case ok && e.device == "" && now.Sub(e.verified) < c.negTTL:
		return "", unauthorized()
	case ok && e.device != "" && now.Sub(e.verified) < c.ttl:
		c.revocations(ctx, now)
		c.mu.Lock()
		e, ok = c.m[key]
		known := c.checked
		c.mu.Unlock()
		if ok && now.Sub(later(e.verified, known)) < RevocationWindow {
			return e.device, nil
		}
	}
	d, err := creds.Authenticate(ctx, cred)
	switch {
	case err == nil && api.ValidDeviceID(d.ID):
		c.put(key, authEntry{device: d.ID, verified: now})
		if c.verified != nil {
			c.verified(d)
		}
		return d.ID, nil
	case err == nil:
		return "", api.Errorf(api.Internal, "the registry answered an invalid device id")
	case api.IsCode(err, api.Unauthorized):
		c.put(key, authEntry{verified: now})
		return "", unauthorized()
	}
	return "", err // not cached: the next write asks again
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// revocations reads the revocation items of the minutes since the last check (and the one before it: the
// registry writes the item before it changes the device, so a device read just after a check may still show the
// old credential) when that check is older than every; a failed read is tried again every later.
func (c *authCache) revocations(ctx context.Context, now time.Time) {
	if c.table == nil {
		return
	}
	c.reading.Lock() // one read at a time; the cache stays usable meanwhile
	defer c.reading.Unlock()
	c.mu.Lock()
	checked, attempted := c.checked, c.attempted
	if now.Sub(checked) < c.every || now.Sub(attempted) < c.every {
		c.mu.Unlock()
		return
	}
	c.attempted = now
	if now.Sub(checked) > maxRevocationGap {
		clear(c.m)
		c.checked = now
	}
	c.mu.Unlock()
	if now.Sub(checked) > maxRevocationGap {
		return
	}
	var keys []store.Item
	for m := checked.Unix()/60 - 1; m <= now.Unix()/60; m++ {
		keys = append(keys, registry.RevocationKey(time.Unix(m*60, 0)))
	}
	out, err := c.table.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		c.table.Name: {Keys: keys, ProjectionExpression: aws.String("ids, expiresAt")}}})
	if err == nil && len(out.UnprocessedKeys) > 0 {
		err = api.Errorf(api.StoreUnavailable, "revocation items left unprocessed")
	}
	if err != nil {
		api.Logger(ctx).WarnContext(ctx, "revocations unread: cached credentials expire within the window",
			slog.String("error", store.Classify(err).Error()))
		return
	}
	revoked := map[string]bool{}
	for _, it := range out.Responses[c.table.Name] {
		if ids, ok := it["ids"].(*types.AttributeValueMemberSS); ok && !store.Expired(it, now) {
			for _, id := range ids.Value {
				revoked[id] = true
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(revoked) > 0 {
		for k, e := range c.m {
			if revoked[e.device] {
				delete(c.m, k)
			}
		}
	}
	c.checked = now
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
			if now.Sub(old.verified) >= c.ttl || (old.device == "" && now.Sub(old.verified) >= c.negTTL) {
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
