// Package setup prepares the InfluxDB that IoT Center points at, idempotently: it checks the admin token's
// permissions, creates the data, registry and downsampled buckets, the hourly downsampling task and an InfluxDB
// dashboard. The same Run serves the CloudFormation custom resource (cfn.go) and `make run`.
//
// Downsampled schema (the query function relies on it): measurement "environment_1h", the source's tags (clientId and
// the sensor tags) plus tag "agg" in count|mean|min|max|last, field = the source field name (always float),
// _time = the start of the hour.
package setup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// Defaults of the retention parameters in template.yaml.
const (
	DefaultDataRetention        = 30 * 24 * time.Hour
	DefaultDownsampledRetention = 400 * 24 * time.Hour
	// MaxRetention bounds the retention parameters (100 years).
	MaxRetention = 36500 * 24 * time.Hour
)

// DefaultFields are the iot-center-v2 measurement fields that get a dashboard cell.
var DefaultFields = []string{schema.Temperature, schema.Humidity, schema.Pressure, schema.CO2, schema.TVOC}

// Options say what Run creates. The zero value of a retention means its default; names are required.
type Options struct {
	Bucket               string
	BucketDownsampled    string
	DataRetention        time.Duration
	DownsampledRetention time.Duration
	TaskName             string   // default "IoT Center: downsample <Bucket> to <BucketDownsampled>"
	DashboardName        string   // default "IoT Center: <Bucket>"
	Fields               []string // dashboard cells; default DefaultFields
	// Roles, when set, receives one scoped token per role (see Roles); Owner tells this deployment's role
	// authorizations from others' on the same InfluxDB (the stack's SSM prefix, the local state folder).
	Roles TokenStore
	Owner string
	// Generation tells one generation of the role tokens from the next (the custom resource's physical id); ""
	// for local runs, which replace a token in place.
	Generation string
	// RoleNames, when set, limits the roles to these (a local run keeps only the roles its template's functions
	// use; the custom resource keeps them all).
	RoleNames []string
}

// OptionsFrom takes the bucket names from the functions' configuration.
func OptionsFrom(cfg config.Config) Options {
	return Options{Bucket: cfg.Bucket, BucketDownsampled: cfg.BucketDownsampled}
}

func (o Options) withDefaults() (Options, error) {
	if o.Bucket == "" || o.BucketDownsampled == "" {
		return o, errors.New("setup: the two bucket names are required")
	}
	if o.Bucket == o.BucketDownsampled {
		return o, errors.New("setup: the data and downsampled buckets must be two different buckets")
	}
	if o.DataRetention == 0 {
		o.DataRetention = DefaultDataRetention
	}
	if o.DownsampledRetention == 0 {
		o.DownsampledRetention = DefaultDownsampledRetention
	}
	for _, r := range []time.Duration{o.DataRetention, o.DownsampledRetention} {
		if r < time.Hour || r > MaxRetention {
			return o, fmt.Errorf("setup: retention %s out of range [1h, %s]", r, MaxRetention)
		}
	}
	if o.TaskName == "" {
		o.TaskName = "IoT Center: downsample " + o.Bucket + " to " + o.BucketDownsampled
	}
	if o.DashboardName == "" {
		o.DashboardName = "IoT Center: " + o.Bucket
	}
	if len(o.Fields) == 0 {
		o.Fields = DefaultFields
	}
	return o, nil
}

// Result is what Run found or created.
type Result struct {
	BucketIDs   map[string]string // bucket name -> id
	TaskID      string
	DashboardID string
	Created     []string // what this run created or changed (empty on a second run)
}

// Run prepares InfluxDB. Running it again changes nothing (and creates nothing twice); changed retentions and a
// changed task script are updated in place.
func Run(ctx context.Context, c *influx.Client, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	res := Result{BucketIDs: map[string]string{}}
	orgID, err := checkPermissions(ctx, c)
	if err != nil {
		return res, err
	}
	for _, b := range []struct {
		name      string
		retention time.Duration
	}{{o.Bucket, o.DataRetention}, {o.BucketDownsampled, o.DownsampledRetention}} {
		id, changed, err := ensureBucket(ctx, c, b.name, b.retention)
		if err != nil {
			return res, err
		}
		res.BucketIDs[b.name] = id
		if changed != "" {
			res.Created = append(res.Created, changed)
		}
	}
	if err := checkCanCreateAuthorizations(ctx, c, res.BucketIDs[o.Bucket]); err != nil {
		return res, err
	}
	res.TaskID, err = ensureTask(ctx, c, orgID, o, &res.Created)
	if err != nil {
		return res, err
	}
	res.DashboardID, err = ensureDashboard(ctx, c, orgID, o, &res.Created)
	if err != nil {
		return res, err
	}
	// the role tokens last: a run failing before them has not yet replaced a stored token (a failed update's
	// new generation is revoked, and the stored tokens are what functions read)
	if o.Roles != nil {
		ids := map[string]string{DataBucket: res.BucketIDs[o.Bucket], DownsampledBucket: res.BucketIDs[o.BucketDownsampled]}
		if err := ensureRoles(ctx, c, orgID, o.Roles, o.Owner, o.Generation, o.RoleNames, ids, &res.Created); err != nil {
			return res, err
		}
	}
	api.Logger(ctx).InfoContext(ctx, "influxdb setup done", slog.Any("created", res.Created),
		slog.String("taskId", res.TaskID), slog.String("dashboardId", res.DashboardID))
	return res, nil
}

// Preflight checks, without changing anything, that the admin token reaches InfluxDB and can read the
// organization, buckets, authorizations, tasks and dashboards (`make check-deploy` runs it before a deploy).
func Preflight(ctx context.Context, c *influx.Client) error {
	_, err := checkPermissions(ctx, c)
	return err
}

// checkPermissions reads every kind of resource setup and the functions use, so a token that cannot is reported
// by name at deploy time rather than as a 403 from some later request.
func checkPermissions(ctx context.Context, c *influx.Client) (string, error) {
	orgID, err := c.OrgID(ctx)
	if err != nil {
		if influx.StatusOf(err) == 0 && strings.Contains(err.Error(), "not found") {
			// a token that cannot read the org sees it as missing
			return "", fmt.Errorf("setup: organization %q not found, or the admin token cannot read it; use an all-access (operator) token: %w", c.Org(), err)
		}
		return "", permissionError("read the organization "+c.Org(), err)
	}
	q := url.Values{"orgID": {orgID}, "limit": {"1"}}
	for _, p := range []struct{ what, path string }{
		{"buckets", "/api/v2/buckets"},
		{"authorizations", "/api/v2/authorizations"},
		{"tasks", "/api/v2/tasks"},
		{"dashboards", "/api/v2/dashboards"},
	} {
		if err := c.JSON(ctx, http.MethodGet, p.path, q, nil, nil); err != nil {
			return "", permissionError("read "+p.what, err)
		}
	}
	return orgID, nil
}

// checkCanCreateAuthorizations proves the token can do what registration needs (create and delete a bucket-scoped
// authorization) by doing it once.
func checkCanCreateAuthorizations(ctx context.Context, c *influx.Client, bucketID string) error {
	a, err := c.CreateBucketAuthorization(ctx, "IoT Center: setup permission check", bucketID)
	if err != nil {
		return permissionError("create authorizations", err)
	}
	if err := c.DeleteAuthorization(ctx, a.ID); err != nil {
		return permissionError("delete authorizations", err)
	}
	return nil
}

func permissionError(what string, err error) error {
	switch influx.StatusOf(err) {
	case http.StatusUnauthorized:
		return fmt.Errorf("setup: the InfluxDB admin token is not valid (cannot %s): %w", what, err)
	case http.StatusForbidden, http.StatusNotFound:
		return fmt.Errorf("setup: the InfluxDB admin token cannot %s; use an all-access (operator) token: %w", what, err)
	}
	return fmt.Errorf("setup: cannot %s: %w", what, err)
}

type bucketJSON struct {
	ID             string `json:"id"`
	RetentionRules []struct {
		Type         string `json:"type"`
		EverySeconds int64  `json:"everySeconds"`
	} `json:"retentionRules"`
}

// ensureBucket creates the bucket or brings its retention to the wanted one (0 = infinite). changed says what it did.
func ensureBucket(ctx context.Context, c *influx.Client, name string, retention time.Duration) (id, changed string, err error) {
	id, created, err := c.EnsureBucket(ctx, name, retention)
	if err != nil {
		return "", "", fmt.Errorf("setup: bucket %s: %w", name, err)
	}
	if created {
		return id, "bucket " + name, nil
	}
	var b bucketJSON
	if err := c.JSON(ctx, http.MethodGet, "/api/v2/buckets/"+url.PathEscape(id), nil, nil, &b); err != nil {
		return "", "", fmt.Errorf("setup: reading bucket %s: %w", name, err)
	}
	var have int64
	for _, r := range b.RetentionRules {
		if r.Type == "expire" {
			have = r.EverySeconds
		}
	}
	want := int64(retention / time.Second)
	if have == want {
		return id, "", nil
	}
	// everySeconds 0 is infinite (an empty rule list would leave the old retention in place)
	rules := []map[string]any{{"type": "expire", "everySeconds": 0}}
	if want > 0 {
		// InfluxDB refuses a retention shorter than the bucket's shard group duration: set the default one for
		// the new retention along with it
		rules = []map[string]any{{"type": "expire", "everySeconds": want,
			"shardGroupDurationSeconds": int64(shardGroupDuration(retention) / time.Second)}}
	}
	if err := c.JSON(ctx, http.MethodPatch, "/api/v2/buckets/"+url.PathEscape(id), nil, map[string]any{"retentionRules": rules}, nil); err != nil {
		return "", "", fmt.Errorf("setup: updating the retention of bucket %s: %w", name, err)
	}
	return id, fmt.Sprintf("retention of %s to %s", name, retention), nil
}

type taskJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Flux      string    `json:"flux"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

// findTasks lists the organization's tasks with exactly this name, oldest first.
func findTasks(ctx context.Context, c *influx.Client, orgID, name string) ([]taskJSON, error) {
	var out struct {
		Tasks []taskJSON `json:"tasks"`
	}
	q := url.Values{"orgID": {orgID}, "name": {name}, "limit": {"500"}}
	if err := c.JSON(ctx, http.MethodGet, "/api/v2/tasks", q, nil, &out); err != nil {
		return nil, fmt.Errorf("setup: listing tasks: %w", err)
	}
	var tasks []taskJSON
	for _, t := range out.Tasks {
		if t.Name == name {
			tasks = append(tasks, t)
		}
	}
	sort.Slice(tasks, func(i, j int) bool {
		if !tasks[i].CreatedAt.Equal(tasks[j].CreatedAt) {
			return tasks[i].CreatedAt.Before(tasks[j].CreatedAt)
		}
		return tasks[i].ID < tasks[j].ID
	})
	return tasks, nil
}

// ensureTask keeps exactly one active task of that name with the current script: the oldest one wins, copies left by
// two concurrent setups are deleted.
func ensureTask(ctx context.Context, c *influx.Client, orgID string, o Options, created *[]string) (string, error) {
	flux := TaskFlux(o.TaskName, o.Bucket, o.BucketDownsampled)
	tasks, err := findTasks(ctx, c, orgID, o.TaskName)
	if err != nil {
		return "", err
	}
	if len(tasks) == 0 {
		var t taskJSON
		body := map[string]any{"orgID": orgID, "flux": flux, "status": "active",
			"description": "Hourly count/mean/min/max/last of " + schema.Measurement + " into " + o.BucketDownsampled}
		if err := c.JSON(ctx, http.MethodPost, "/api/v2/tasks", nil, body, &t); err != nil {
			return "", fmt.Errorf("setup: creating the downsampling task: %w", err)
		}
		*created = append(*created, "task "+o.TaskName)
		return t.ID, nil
	}
	keep := tasks[0]
	for _, extra := range tasks[1:] {
		if err := c.JSON(ctx, http.MethodDelete, "/api/v2/tasks/"+url.PathEscape(extra.ID), nil, nil, nil); err != nil && influx.StatusOf(err) != http.StatusNotFound {
			return "", fmt.Errorf("setup: deleting a duplicate task: %w", err)
		}
		*created = append(*created, "deleted duplicate task "+extra.ID)
	}
	if strings.TrimSpace(keep.Flux) != strings.TrimSpace(flux) || keep.Status != "active" {
		body := map[string]any{"flux": flux, "status": "active"}
		if err := c.JSON(ctx, http.MethodPatch, "/api/v2/tasks/"+url.PathEscape(keep.ID), nil, body, nil); err != nil {
			return "", fmt.Errorf("setup: updating the downsampling task: %w", err)
		}
		*created = append(*created, "updated task "+o.TaskName)
	}
	return keep.ID, nil
}

// fluxString quotes s as a Flux string literal (bucket and task names are operator configuration, still quoted
// rather than trusted).
func fluxString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// shardGroupDuration is InfluxDB's default shard group duration for a retention.
func shardGroupDuration(retention time.Duration) time.Duration {
	switch {
	case retention == 0 || retention > 180*24*time.Hour:
		return 7 * 24 * time.Hour
	case retention < 2*24*time.Hour:
		return time.Hour
	default:
		return 24 * time.Hour
	}
}
