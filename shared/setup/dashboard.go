package setup

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

type dashboardJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Meta struct {
		CreatedAt time.Time `json:"createdAt"`
	} `json:"meta"`
	Cells []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"cells"`
}

// maxDashboardPages bounds the listing (100 dashboards a page).
const maxDashboardPages = 50

// findDashboard returns the oldest dashboard with that name, or "" when there is none.
func findDashboard(ctx context.Context, c *influx.Client, orgID, name string) (string, error) {
	var found []dashboardJSON
	for page := 0; page < maxDashboardPages; page++ {
		var out struct {
			Dashboards []dashboardJSON `json:"dashboards"`
		}
		q := url.Values{"orgID": {orgID}, "limit": {"100"}, "offset": {strconv.Itoa(page * 100)}}
		if err := c.JSON(ctx, http.MethodGet, "/api/v2/dashboards", q, nil, &out); err != nil {
			return "", fmt.Errorf("setup: listing dashboards: %w", err)
		}
		for _, d := range out.Dashboards {
			if d.Name == name {
				found = append(found, d)
			}
		}
		if len(out.Dashboards) < 100 {
			break
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	sort.Slice(found, func(i, j int) bool {
		if !found[i].Meta.CreatedAt.Equal(found[j].Meta.CreatedAt) {
			return found[i].Meta.CreatedAt.Before(found[j].Meta.CreatedAt)
		}
		return found[i].ID < found[j].ID
	})
	return found[0].ID, nil
}

// ensureDashboard keeps one dashboard of that name with a cell per field; cells missing (a setup interrupted between
// creating the dashboard and its cells) are added, cells a person added are left alone.
func ensureDashboard(ctx context.Context, c *influx.Client, orgID string, o Options, created *[]string) (string, error) {
	id, err := findDashboard(ctx, c, orgID, o.DashboardName)
	if err != nil {
		return "", err
	}
	if id == "" {
		var d dashboardJSON
		body := map[string]any{"orgID": orgID, "name": o.DashboardName,
			"description": "IoT Center measurements (" + schema.Measurement + " in " + o.Bucket + "), one cell per field"}
		if err := c.JSON(ctx, http.MethodPost, "/api/v2/dashboards", nil, body, &d); err != nil {
			return "", fmt.Errorf("setup: creating the dashboard: %w", err)
		}
		id = d.ID
		*created = append(*created, "dashboard "+o.DashboardName)
	}
	var d dashboardJSON
	q := url.Values{"include": {"properties"}}
	if err := c.JSON(ctx, http.MethodGet, "/api/v2/dashboards/"+url.PathEscape(id), q, nil, &d); err != nil {
		return "", fmt.Errorf("setup: reading the dashboard: %w", err)
	}
	have := map[string]bool{}
	for _, cell := range d.Cells {
		have[cell.Name] = true
	}
	for i, field := range o.Fields {
		if have[field] {
			continue
		}
		if err := addCell(ctx, c, id, i, field, o.Bucket); err != nil {
			return "", err
		}
		*created = append(*created, "dashboard cell "+field)
	}
	return id, nil
}

// addCell places field's graph on a two-column grid (InfluxDB's is 12 units wide).
func addCell(ctx context.Context, c *influx.Client, dashboardID string, i int, field, bucket string) error {
	var cell struct {
		ID string `json:"id"`
	}
	pos := map[string]any{"name": field, "x": (i % 2) * 6, "y": (i / 2) * 4, "w": 6, "h": 4}
	path := "/api/v2/dashboards/" + url.PathEscape(dashboardID) + "/cells"
	if err := c.JSON(ctx, http.MethodPost, path, nil, pos, &cell); err != nil {
		return fmt.Errorf("setup: adding dashboard cell %s: %w", field, err)
	}
	if err := c.JSON(ctx, http.MethodPatch, path+"/"+url.PathEscape(cell.ID)+"/view", nil, cellView(field, bucket), nil); err != nil {
		return fmt.Errorf("setup: setting dashboard cell %s: %w", field, err)
	}
	return nil
}

func cellView(field, bucket string) map[string]any {
	query := "from(bucket: " + fluxString(bucket) + ")\n" +
		"    |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n" +
		"    |> filter(fn: (r) => r._measurement == \"" + schema.Measurement + "\" and r._field == " + fluxString(field) + ")\n" +
		"    |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n" +
		"    |> yield(name: \"mean\")"
	axis := func(label string) map[string]any {
		return map[string]any{"bounds": []string{"", ""}, "label": label, "prefix": "", "suffix": "", "base": "10", "scale": "linear"}
	}
	return map[string]any{
		"name": field,
		"properties": map[string]any{
			"type":  "xy",
			"shape": "chronograf-v2",
			"geom":  "line",
			"queries": []any{map[string]any{
				"text": query, "editMode": "advanced", "name": "",
				"builderConfig": map[string]any{"buckets": []string{}, "tags": []any{}, "functions": []any{},
					"aggregateWindow": map[string]any{"period": "auto"}},
			}},
			"axes":              map[string]any{"x": axis(""), "y": axis(field)},
			"colors":            []any{},
			"note":              "",
			"showNoteWhenEmpty": false,
			"position":          "overlaid",
			"xColumn":           "_time",
			"yColumn":           "_value",
			"hoverDimension":    "auto",
		},
	}
}
