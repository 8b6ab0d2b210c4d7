package setup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"

	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Least privilege: every function but Setup and the ones that create or revoke device authorizations gets a token
// of its own role, scoped to the buckets it reads or writes. Setup creates one InfluxDB authorization per role and
// keeps its token in a TokenStore (SSM SecureStrings under the stack's prefix in AWS, .local/tokens.env for
// `make run`, env.json's function sections for `sam local`).

// Bucket kinds a role permission names; Run resolves them to the configured buckets' ids.
const (
	DataBucket        = "data"
	DownsampledBucket = "downsampled"
)

// Grant is one action on one bucket kind.
type Grant struct {
	Action string // "read" or "write"
	Bucket string // DataBucket or DownsampledBucket
}

// Role is a named set of grants. Every role token can also read its organization (clients resolve names through it).
type Role struct {
	Name   string
	Grants []Grant
}

// AdminRole names the admin token (INFLUX_TOKEN_PARAMETER = the InfluxTokenParameter): not created by setup.
const AdminRole = "admin"

func read(b string) Grant  { return Grant{"read", b} }
func write(b string) Grant { return Grant{"write", b} }

// Roles are the scoped tokens setup keeps.
var Roles = []Role{
	// the authorizer, GET /api/devices and fleet health: the data for a device's last write (devices, credentials
	// and jobs live in the state table, not in InfluxDB)
	{"data-read", []Grant{read(DataBucket)}},
	// dashboard data and gauges: raw and hourly data
	{"query", []Grant{read(DataBucket), read(DownsampledBucket)}},
	// write-missing coverage: the data's gaps
	{"planner", []Grant{read(DataBucket)}},
	// the backfill worker: the data's hourly counts, writes minutes and their hourly aggregates (and reads back
	// partly written hours)
	{"worker", []Grant{read(DataBucket), write(DataBucket), read(DownsampledBucket), write(DownsampledBucket)}},
	// the fleet-health run: the devices' recent points, and its counts written back (measurement "fleet")
	{"fleet", []Grant{read(DataBucket), write(DataBucket)}},
	// the write gateway: devices' points into the data bucket (credentials are checked against the state table)
	{"gateway", []Grant{write(DataBucket)}},
}

// FunctionRoles says which token each function gets (template.yaml's INFLUX_TOKEN_PARAMETER agrees; a test checks).
// AdminRole: Setup, and the functions that create or revoke device authorizations (registration in direct mode,
// rotation, deletion). "" : the function reads no token.
var FunctionRoles = map[string]string{
	"SetupFunction":          AdminRole,
	"EnvConfigFunction":      AdminRole,
	"RegisterFunction":       AdminRole,
	"DeleteFunction":         AdminRole,
	"PurgeFunction":          AdminRole, // a delete's second data pass: deletes points as DeleteFunction does
	"AuthorizerFunction":     "data-read",
	"DevicesFunction":        "data-read",
	"QueryFunction":          "query",
	"OverviewFunction":       "query",
	"WriteMissingFunction":   "planner",
	"BackfillWorkerFunction": "worker",
	"WriteGatewayFunction":   "gateway",
	"FleetHealthFunction":    "fleet",
	"HealthFunction":         "",
	"UiFunction":             "",
}

// RoleByName returns the role, or false.
func RoleByName(name string) (Role, bool) {
	for _, r := range Roles {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// TokenStore keeps the role tokens where the functions read them.
type TokenStore interface {
	// Get returns the stored token of a role, "" when there is none.
	Get(ctx context.Context, role string) (string, error)
	Put(ctx context.Context, role, token string) error
	Delete(ctx context.Context, role string) error
}

// roleDescription names a role's authorization; owner tells stacks (and local state folders) on one InfluxDB apart,
// gen one generation of a stack's tokens from the next ("" before generations, and for local runs).
func roleDescription(role, owner, gen string) string {
	d := "IoT Center role " + role + " (" + owner + ")"
	if gen != "" {
		d += " generation " + gen
	}
	return d
}

type authJSON struct {
	ID          string `json:"id"`
	Token       string `json:"token"`
	Description string `json:"description"`
	Status      string `json:"status"`
	Permissions []struct {
		Action   string `json:"action"`
		Resource struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"resource"`
	} `json:"permissions"`
}

// grantsOf renders an authorization's permissions as sorted "action type id" strings.
func (a authJSON) grants() []string {
	out := make([]string, 0, len(a.Permissions))
	for _, p := range a.Permissions {
		out = append(out, p.Action+" "+p.Resource.Type+" "+p.Resource.ID)
	}
	sort.Strings(out)
	return out
}

func wantGrants(r Role, orgID string, ids map[string]string) ([]string, []map[string]any, error) {
	perms := []map[string]any{{"action": "read", "resource": map[string]string{"type": "orgs", "id": orgID}}}
	keys := []string{"read orgs " + orgID}
	for _, g := range r.Grants {
		id := ids[g.Bucket]
		if id == "" {
			return nil, nil, fmt.Errorf("setup: role %s: no %s bucket", r.Name, g.Bucket)
		}
		perms = append(perms, map[string]any{"action": g.Action, "resource": map[string]string{"type": "buckets", "id": id, "orgID": orgID}})
		keys = append(keys, g.Action+" buckets "+id)
	}
	sort.Strings(keys)
	return keys, perms, nil
}

// ensureRoles keeps exactly one live authorization per role of this generation with the wanted permissions, its
// token in the store. A stored token whose authorization is the only one of its role, has the wanted permissions
// and still opens its bucket is kept (a rerun changes nothing, so warm functions keep working); otherwise a new
// authorization is created, stored, and every older one of that role, owner and generation revoked. Other
// generations' authorizations are not touched: each is revoked by its own Delete (RevokeGeneration).
func ensureRoles(ctx context.Context, c *influx.Client, orgID string, store TokenStore, owner, gen string, only []string, ids map[string]string, created *[]string) error {
	if owner == "" {
		return errors.New("setup: role tokens need an owner (the stack's parameter prefix or the local state folder)")
	}
	var list struct {
		Authorizations []authJSON `json:"authorizations"`
	}
	if err := c.JSON(ctx, http.MethodGet, "/api/v2/authorizations", url.Values{"orgID": {orgID}}, nil, &list); err != nil {
		return fmt.Errorf("setup: listing authorizations: %w", err)
	}
	for _, r := range Roles {
		if only != nil && !slices.Contains(only, r.Name) {
			continue
		}
		keys, perms, err := wantGrants(r, orgID, ids)
		if err != nil {
			return err
		}
		desc := roleDescription(r.Name, owner, gen)
		var existing []authJSON
		for _, a := range list.Authorizations {
			if a.Description == desc {
				existing = append(existing, a)
			}
		}
		stored, err := store.Get(ctx, r.Name)
		if err != nil {
			return fmt.Errorf("setup: reading the %s token: %w", r.Name, err)
		}
		if stored != "" && len(existing) == 1 && existing[0].Status == "active" && slices.Equal(existing[0].grants(), keys) &&
			opens(ctx, c, stored, r, ids) {
			continue
		}
		var a authJSON
		body := map[string]any{"orgID": orgID, "description": desc, "status": "active", "permissions": perms}
		if err := c.JSON(ctx, http.MethodPost, "/api/v2/authorizations", nil, body, &a); err != nil {
			return fmt.Errorf("setup: creating the %s authorization: %w", r.Name, err)
		}
		if err := store.Put(ctx, r.Name, a.Token); err != nil {
			// the new authorization is useless without its stored token: revoke it rather than leak it
			_ = c.DeleteAuthorization(ctx, a.ID)
			return fmt.Errorf("setup: storing the %s token: %w", r.Name, err)
		}
		for _, old := range existing {
			if err := c.DeleteAuthorization(ctx, old.ID); err != nil {
				return fmt.Errorf("setup: revoking an old %s authorization: %w", r.Name, err)
			}
		}
		*created = append(*created, "token "+r.Name)
	}
	return nil
}

// opens reports whether a stored token still works: it reads the bucket of the role's first read grant (a bucket
// read permission lets a token read that bucket's description). A role without a read grant is taken as working.
func opens(ctx context.Context, c *influx.Client, token string, r Role, ids map[string]string) bool {
	for _, g := range r.Grants {
		if g.Action != "read" {
			continue
		}
		rc := influx.New(c.URL(), token, c.Org(), influx.Options{Retry: influx.RetryPolicy{MaxAttempts: 1}})
		defer rc.Close()
		return rc.JSON(ctx, http.MethodGet, "/api/v2/buckets/"+url.PathEscape(ids[g.Bucket]), nil, nil, nil) == nil
	}
	return true
}

// RevokeGeneration revokes the role authorizations of one generation of owner's tokens and deletes the stored
// tokens of that generation (a store keeping generations leaves a newer one's alone): the Delete CloudFormation
// sends for a replaced setup resource, after the update succeeded, and the stack's deletion.
func RevokeGeneration(ctx context.Context, c *influx.Client, store TokenStore, owner, gen string) error {
	all, err := c.ListAuthorizations(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range Roles {
		// the parameter first: revoking first would leave a parameter naming a dead token if this run stops midway
		errs = append(errs, store.Delete(ctx, r.Name))
		desc := roleDescription(r.Name, owner, gen)
		for _, a := range all {
			if a.Description == desc {
				errs = append(errs, c.DeleteAuthorization(ctx, a.ID))
			}
		}
	}
	return errors.Join(errs...)
}
