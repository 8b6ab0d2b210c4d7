package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/domain"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Authorization is the part of an InfluxDB authorization this project uses.
type Authorization struct {
	ID          string
	Token       string // only filled when the authorization was just created (OSS 2.9+ and Cloud never list it)
	Description string
	Active      bool
	CreatedAt   time.Time
	Permissions []Permission
}

// Permission is one action on one bucket.
type Permission struct {
	Action   string // "read" or "write"
	BucketID string // "" when the permission is not scoped to one bucket
	Type     string
}

// GrantsReadWrite reports whether the authorization is active and can both read and write bucketID.
func (a Authorization) GrantsReadWrite(bucketID string) bool {
	var r, w bool
	for _, p := range a.Permissions {
		if p.Type != string(domain.ResourceTypeBuckets) || p.BucketID != bucketID {
			continue
		}
		switch p.Action {
		case string(domain.PermissionActionRead):
			r = true
		case string(domain.PermissionActionWrite):
			w = true
		}
	}
	return a.Active && r && w
}

// CreateBucketAuthorization creates an authorization with read and write on bucketID only.
func (c *Client) CreateBucketAuthorization(ctx context.Context, description, bucketID string) (Authorization, error) {
	return c.createAuthorization(ctx, description, bucketID, domain.AuthorizationUpdateRequestStatusActive,
		domain.PermissionActionRead, domain.PermissionActionWrite)
}

// CreateInactiveAuthorization creates an inactive authorization with read and write on the named bucket: its token
// opens nothing until ActivateAuthorization, so a caller that loses a race (or crashes) before activating leaves no
// working credential behind.
func (c *Client) CreateInactiveAuthorization(ctx context.Context, description, bucket string) (Authorization, error) {
	bucketID, err := c.setupBucketID(ctx, bucket)
	if err != nil {
		return Authorization{}, err
	}
	return c.createAuthorization(ctx, description, bucketID, domain.AuthorizationUpdateRequestStatusInactive,
		domain.PermissionActionRead, domain.PermissionActionWrite)
}

// Grants reports whether a is active and can both read and write the named bucket.
func (c *Client) Grants(ctx context.Context, a Authorization, bucket string) (bool, error) {
	bucketID, err := c.setupBucketID(ctx, bucket)
	return err == nil && a.GrantsReadWrite(bucketID), err
}

// setupBucketID is the id of a bucket setup creates: a missing one is a deployment fault (503), not the caller's 404.
func (c *Client) setupBucketID(ctx context.Context, name string) (string, error) {
	id, err := c.BucketID(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return "", api.Wrap(api.Unavailable, err, "finding the bucket %s (has setup run?)", name)
	}
	return id, Fail(ctx, err, "finding the bucket "+name)
}

// ActivateAuthorization sets an authorization active (again); activating an active one changes nothing.
func (c *Client) ActivateAuthorization(ctx context.Context, id string) error {
	if _, err := c.c.AuthorizationsAPI().UpdateAuthorizationStatusWithID(ctx, id, domain.AuthorizationUpdateRequestStatusActive); err != nil {
		if StatusOf(err) == http.StatusNotFound {
			return fmt.Errorf("influx: authorization %s: %w", id, ErrNotFound)
		}
		return fmt.Errorf("influx: activating authorization %s: %w", id, err)
	}
	return nil
}

func (c *Client) createAuthorization(ctx context.Context, description, bucketID string, status domain.AuthorizationUpdateRequestStatus, actions ...domain.PermissionAction) (Authorization, error) {
	orgID, err := c.OrgID(ctx)
	if err != nil {
		return Authorization{}, err
	}
	res := domain.Resource{Type: domain.ResourceTypeBuckets, Id: &bucketID, OrgID: &orgID}
	perms := make([]domain.Permission, 0, len(actions))
	for _, a := range actions {
		perms = append(perms, domain.Permission{Action: a, Resource: res})
	}
	a, err := c.c.AuthorizationsAPI().CreateAuthorization(ctx, &domain.Authorization{
		AuthorizationUpdateRequest: domain.AuthorizationUpdateRequest{Description: &description, Status: &status},
		OrgID:                      &orgID,
		Permissions:                &perms,
	})
	if err != nil {
		return Authorization{}, fmt.Errorf("influx: creating authorization: %w", err)
	}
	return fromDomain(a), nil
}

// FindAuthorizations lists the organization's authorizations with exactly this description, oldest first
// (by creation time, then id), so every caller sees the same order.
func (c *Client) FindAuthorizations(ctx context.Context, description string) ([]Authorization, error) {
	all, err := c.ListAuthorizations(ctx)
	if err != nil {
		return nil, err
	}
	var out []Authorization
	for _, a := range all {
		if a.Description == description {
			out = append(out, a)
		}
	}
	return out, nil
}

// ListAuthorizations lists all of the organization's authorizations, oldest first.
func (c *Client) ListAuthorizations(ctx context.Context) ([]Authorization, error) {
	orgID, err := c.OrgID(ctx)
	if err != nil {
		return nil, err
	}
	list, err := c.c.AuthorizationsAPI().FindAuthorizationsByOrgID(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("influx: listing authorizations: %w", err)
	}
	out := make([]Authorization, 0, len(*list))
	for i := range *list {
		out = append(out, fromDomain(&(*list)[i]))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// GetAuthorization reads one authorization; a missing one is ErrNotFound.
func (c *Client) GetAuthorization(ctx context.Context, id string) (Authorization, error) {
	a, err := c.c.APIClient().GetAuthorizationsID(ctx, &domain.GetAuthorizationsIDAllParams{AuthID: id})
	if err != nil {
		if StatusOf(err) == http.StatusNotFound {
			return Authorization{}, fmt.Errorf("influx: authorization %s: %w", id, ErrNotFound)
		}
		return Authorization{}, fmt.Errorf("influx: reading authorization %s: %w", id, err)
	}
	return fromDomain(a), nil
}

// DeleteAuthorization revokes an authorization; one that is already gone is not an error.
func (c *Client) DeleteAuthorization(ctx context.Context, id string) error {
	err := c.c.AuthorizationsAPI().DeleteAuthorizationWithID(ctx, id)
	if err != nil && StatusOf(err) != http.StatusNotFound {
		return fmt.Errorf("influx: deleting authorization %s: %w", id, err)
	}
	return nil
}

func fromDomain(a *domain.Authorization) Authorization {
	out := Authorization{ID: deref(a.Id), Token: deref(a.Token)}
	if a.Description != nil {
		out.Description = *a.Description
	}
	out.Active = a.Status == nil || *a.Status == domain.AuthorizationUpdateRequestStatusActive
	if a.CreatedAt != nil {
		out.CreatedAt = *a.CreatedAt
	}
	if a.Permissions != nil {
		for _, p := range *a.Permissions {
			out.Permissions = append(out.Permissions, Permission{
				Action: string(p.Action), BucketID: deref(p.Resource.Id), Type: string(p.Resource.Type),
			})
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
