package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrConflict is returned (wrapped) when InfluxDB refuses to create something whose name is taken.
var ErrConflict = errors.New("conflict")

// Label is an organization label: a name unique in the organization and a few string properties.
type Label struct {
	ID         string
	Name       string
	Properties map[string]string
}

// CreateLabel creates a label; a name already taken is ErrConflict. InfluxDB checks the name's uniqueness in the
// same transaction that stores the label, which makes this a create-if-absent: of concurrent callers with one name,
// exactly one succeeds.
func (c *Client) CreateLabel(ctx context.Context, name string, props map[string]string) (Label, error) {
	orgID, err := c.OrgID(ctx)
	if err != nil {
		return Label{}, err
	}
	l, err := c.c.LabelsAPI().CreateLabelWithNameWithID(ctx, orgID, name, props)
	if err != nil {
		if s := StatusOf(err); s == http.StatusConflict || s == http.StatusUnprocessableEntity || strings.Contains(err.Error(), "already exists") {
			return Label{}, fmt.Errorf("influx: label %q: %w", name, ErrConflict)
		}
		return Label{}, fmt.Errorf("influx: creating label: %w", err)
	}
	out := Label{ID: deref(l.Id), Name: deref(l.Name)}
	if l.Properties != nil {
		out.Properties = l.Properties.AdditionalProperties
	}
	return out, nil
}

// FindLabels lists the organization's labels whose name starts with prefix.
func (c *Client) FindLabels(ctx context.Context, prefix string) ([]Label, error) {
	orgID, err := c.OrgID(ctx)
	if err != nil {
		return nil, err
	}
	ls, err := c.c.LabelsAPI().FindLabelsByOrgID(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("influx: listing labels: %w", err)
	}
	var out []Label
	for _, l := range *ls {
		if name := deref(l.Name); strings.HasPrefix(name, prefix) {
			lb := Label{ID: deref(l.Id), Name: name}
			if l.Properties != nil {
				lb.Properties = l.Properties.AdditionalProperties
			}
			out = append(out, lb)
		}
	}
	return out, nil
}

// FindLabel returns the organization's label called name, if there is one. InfluxDB filters by name, so this reads
// one label however many the organization holds (FindLabels reads them all).
func (c *Client) FindLabel(ctx context.Context, name string) (Label, bool, error) {
	orgID, err := c.OrgID(ctx)
	if err != nil {
		return Label{}, false, err
	}
	var out struct {
		Labels []struct {
			ID         string            `json:"id"`
			Name       string            `json:"name"`
			Properties map[string]string `json:"properties"`
		} `json:"labels"`
	}
	if err := c.JSON(ctx, http.MethodGet, "/api/v2/labels", url.Values{"orgID": {orgID}, "name": {name}}, nil, &out); err != nil {
		return Label{}, false, fmt.Errorf("influx: finding label %q: %w", name, err)
	}
	for _, l := range out.Labels {
		if l.Name == name {
			return Label{ID: l.ID, Name: l.Name, Properties: l.Properties}, true, nil
		}
	}
	return Label{}, false, nil
}

// DeleteLabel deletes a label; one that is already gone is not an error.
func (c *Client) DeleteLabel(ctx context.Context, id string) error {
	if err := c.c.LabelsAPI().DeleteLabelWithID(ctx, id); err != nil && StatusOf(err) != http.StatusNotFound {
		return fmt.Errorf("influx: deleting label %s: %w", id, err)
	}
	return nil
}
