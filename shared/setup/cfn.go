package setup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Physical ids name one generation of the stack's role tokens: "iot-center-influxdb-setup-<generation>". An Update
// that would replace the tokens (see tokenProperties) answers a new id, so CloudFormation treats it as a
// replacement: it sends a Delete for the old id, with the old properties, only once the whole update succeeded, and
// that Delete revokes the old generation alone. Until then the old tokens keep working for functions that still
// hold them. LegacyPhysicalID is the fixed id of stacks set up before generations (untagged, generation "").
const (
	LegacyPhysicalID = "iot-center-influxdb-setup"
	physicalPrefix   = LegacyPhysicalID + "-"
)

// PhysicalID is the physical id of a generation.
func PhysicalID(gen string) string { return physicalPrefix + gen }

// generationOf reads the generation from a physical id; ok is false for an id this resource never answered with
// (a failed Create answers with the request id).
func generationOf(physical string) (gen string, ok bool) {
	if physical == LegacyPhysicalID {
		return "", true
	}
	gen, ok = strings.CutPrefix(physical, physicalPrefix)
	if !ok || len(gen) != 2*generationBytes || strings.Trim(gen, "0123456789abcdef") != "" {
		return "", false
	}
	return gen, true
}

const generationBytes = 6

func newGeneration() string {
	b := make([]byte, generationBytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tokenProperties are the properties a role token depends on (server, organization, admin token, buckets, where
// the tokens are kept, the role definitions): a change to any of them starts a new generation.
var tokenProperties = []string{"InfluxUrl", "InfluxOrg", "InfluxTokenParameter", "Buckets", "RoleTokenPrefix", "RolesVersion"}

func tokenPropertiesChanged(old, cur map[string]any) bool {
	for _, k := range tokenProperties {
		if fmt.Sprint(old[k]) != fmt.Sprint(cur[k]) {
			return true
		}
	}
	return false
}

// Target is what one event is about: its resource properties (the old ones for the Delete of a replaced
// resource), the token generation and the stack.
type Target struct {
	Properties map[string]any
	Generation string
	StackID    string
}

// Loader builds the InfluxDB client and the options for one event. It runs per event, so a configuration error is
// answered to CloudFormation as FAILED instead of an init crash that nobody answers. The properties win over the
// environment: a Delete after a replacement carries the old server, organization and RoleTokenPrefix, which the
// function's environment no longer holds.
type Loader func(ctx context.Context, t Target) (*influx.Client, Options, error)

// CustomResource handles the AWS::CloudFormation::CustomResource events of InfluxSetup.
type CustomResource struct {
	Load Loader
	// HTTP sends the answer to the pre-signed ResponseURL.
	HTTP *http.Client
	// AttemptTimeout bounds one PUT of the answer; RetryPause is the pause before the first retry (doubled after).
	AttemptTimeout time.Duration
	RetryPause     time.Duration
	// Reserve is kept from the Lambda deadline for answering CloudFormation. Handle raises it to WorstCaseSend plus
	// a margin when it is smaller: a reserve shorter than the answer's own retries would let Lambda kill the
	// function mid-answer, and the stack would wait for ServiceTimeout.
	Reserve time.Duration
}

// NewCustomResource is a CustomResource with sensible timeouts: 3 attempts of at most 5 s with 0.5 s and 1 s
// pauses (16.5 s worst case) inside a 20 s reserve.
func NewCustomResource(load Loader) *CustomResource {
	return &CustomResource{Load: load, HTTP: &http.Client{}, AttemptTimeout: 5 * time.Second,
		RetryPause: 500 * time.Millisecond, Reserve: 20 * time.Second}
}

// sendMargin covers what WorstCaseSend does not count (marshalling, logging, the runtime's own reply).
const sendMargin = 500 * time.Millisecond

// WorstCaseSend is the longest the answer can take: every attempt timing out, with the pauses between them.
func (h *CustomResource) WorstCaseSend() time.Duration {
	d := time.Duration(maxSendAttempts) * h.AttemptTimeout
	pause := h.RetryPause
	for i := 1; i < maxSendAttempts; i++ {
		d += pause
		pause *= 2
	}
	return d
}

// reserve is the time kept for the answer: Reserve, but never less than the worst-case send.
func (h *CustomResource) reserve() time.Duration {
	return max(h.Reserve, h.WorstCaseSend()+sendMargin)
}

// response is CloudFormation's custom resource response document.
type response struct {
	Status             cfn.StatusType `json:"Status"`
	Reason             string         `json:"Reason,omitempty"`
	PhysicalResourceID string         `json:"PhysicalResourceId"`
	StackID            string         `json:"StackId"`
	RequestID          string         `json:"RequestId"`
	LogicalResourceID  string         `json:"LogicalResourceId"`
	Data               map[string]any `json:"Data,omitempty"`
}

// maxReason keeps the response under CloudFormation's 4 KiB limit.
const maxReason = 1000

// Handle runs one event and always answers through the ResponseURL: FAILED with a reason on any error or panic,
// SUCCESS on every Delete (the data is left alone, and a Delete after a failed Create has nothing to undo). The
// returned error is only about delivering the answer.
func (h *CustomResource) Handle(ctx context.Context, ev cfn.Event) (err error) {
	log := api.Logger(ctx).With(slog.String("requestType", string(ev.RequestType)), slog.String("logicalId", ev.LogicalResourceID))
	if err := checkResponseURL(ev.ResponseURL); err != nil {
		log.ErrorContext(ctx, "custom resource event refused", slog.String("error", err.Error()))
		return err
	}
	resp := response{Status: cfn.StatusSuccess, PhysicalResourceID: ev.PhysicalResourceID, StackID: ev.StackID,
		RequestID: ev.RequestID, LogicalResourceID: ev.LogicalResourceID}
	if resp.PhysicalResourceID == "" {
		// a failed Create still needs an id; CloudFormation sends the later Delete with it
		resp.PhysicalResourceID = ev.RequestID
	}
	defer func() {
		if v := recover(); v != nil {
			log.ErrorContext(ctx, "custom resource panicked", slog.Any("panic", v))
			resp.Status, resp.Reason, resp.Data = cfn.StatusFailed, "internal error in the setup function (see its log)", nil
		}
		err = h.send(ctx, ev.ResponseURL, resp)
		if err != nil {
			log.ErrorContext(ctx, "answering CloudFormation failed", slog.String("error", err.Error()))
		} else {
			log.InfoContext(ctx, "answered CloudFormation", slog.String("status", string(resp.Status)), slog.String("reason", resp.Reason))
		}
	}()
	switch ev.RequestType {
	case cfn.RequestDelete:
		resp.Reason = "InfluxDB buckets, task and dashboard are left in place"
		gen, ours := generationOf(ev.PhysicalResourceID)
		if !ours {
			resp.Reason += "; no role tokens were created under this id"
			return nil
		}
		runCtx, cancel := h.runContext(ctx)
		defer cancel()
		if err := h.revoke(runCtx, ev, gen); err != nil {
			// a stack delete or an update's clean-up is never held up by InfluxDB: the leftover is logged (names,
			// never tokens)
			log.ErrorContext(ctx, "revoking the role tokens failed", slog.String("generation", gen), slog.String("error", err.Error()))
			resp.Reason += "; revoking the role tokens of generation " + strconv.Quote(gen) + " failed (see the log)"
		} else {
			resp.Reason += "; role tokens of generation " + strconv.Quote(gen) + " revoked and their SSM parameters deleted"
		}
		return nil
	case cfn.RequestCreate, cfn.RequestUpdate:
	default:
		resp.Status, resp.Reason = cfn.StatusFailed, "unknown request type "+strconv.Quote(string(ev.RequestType))
		return nil
	}
	gen, ours := generationOf(ev.PhysicalResourceID)
	fresh := ev.RequestType == cfn.RequestCreate || !ours || gen == "" ||
		tokenPropertiesChanged(ev.OldResourceProperties, ev.ResourceProperties)
	if fresh {
		gen = newGeneration()
	}
	runCtx, cancel := h.runContext(ctx)
	defer cancel()
	data, runErr := h.run(runCtx, ev, gen)
	if runErr != nil {
		log.ErrorContext(ctx, "influxdb setup failed", slog.String("error", runErr.Error()))
		resp.Status, resp.Reason = cfn.StatusFailed, truncate(runErr.Error(), maxReason)
		if fresh {
			// CloudFormation keeps the old id after a failed Create or Update and never deletes this generation
			if err := h.revoke(runCtx, ev, gen); err != nil {
				log.ErrorContext(ctx, "revoking the failed generation's role tokens failed", slog.String("generation", gen),
					slog.String("error", err.Error()))
			}
		}
		return nil
	}
	resp.PhysicalResourceID, resp.Data = PhysicalID(gen), data
	if fresh && ours && ev.RequestType == cfn.RequestUpdate {
		log.InfoContext(ctx, "new role token generation; the old one is revoked by CloudFormation's Delete after the update",
			slog.String("generation", gen), slog.String("replaces", ev.PhysicalResourceID))
	}
	return nil
}

// runContext leaves Reserve of the invocation's time for the answer.
func (h *CustomResource) runContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-h.reserve()))
	}
	return context.WithCancel(ctx)
}

// revoke revokes one generation's role authorizations and deletes its parameters, on the server and under the
// prefix of the event's properties.
func (h *CustomResource) revoke(ctx context.Context, ev cfn.Event, gen string) error {
	if h.Load == nil {
		return nil
	}
	c, o, err := h.Load(ctx, Target{Properties: ev.ResourceProperties, Generation: gen, StackID: ev.StackID})
	if err != nil {
		return err
	}
	defer c.Close()
	if o.Roles == nil {
		return nil
	}
	return RevokeGeneration(ctx, c, o.Roles, o.Owner, gen)
}

func (h *CustomResource) run(ctx context.Context, ev cfn.Event, gen string) (map[string]any, error) {
	c, o, err := h.Load(ctx, Target{Properties: ev.ResourceProperties, Generation: gen, StackID: ev.StackID})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	o.Generation = gen
	if o.DataRetention, err = days(ev.ResourceProperties, "DataRetentionDays", o.DataRetention); err != nil {
		return nil, err
	}
	if o.DownsampledRetention, err = days(ev.ResourceProperties, "DownsampledRetentionDays", o.DownsampledRetention); err != nil {
		return nil, err
	}
	res, err := Run(ctx, c, o)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"DataBucketId":        res.BucketIDs[o.Bucket],
		"DownsampledBucketId": res.BucketIDs[o.BucketDownsampled],
		"TaskId":              res.TaskID,
		"DashboardId":         res.DashboardID,
	}, nil
}

// days reads a retention property; CloudFormation passes every property as a string.
func days(props map[string]any, name string, def time.Duration) (time.Duration, error) {
	v, ok := props[name]
	if !ok {
		return def, nil
	}
	var n int
	switch x := v.(type) {
	case string:
		i, err := strconv.Atoi(x)
		if err != nil {
			return 0, fmt.Errorf("setup: %s must be a whole number of days, got %q", name, truncate(x, 40))
		}
		n = i
	case float64:
		n = int(x)
		if float64(n) != x {
			return 0, fmt.Errorf("setup: %s must be a whole number of days", name)
		}
	default:
		return 0, fmt.Errorf("setup: %s must be a number of days", name)
	}
	if n < 1 || n > int(MaxRetention/(24*time.Hour)) {
		return 0, fmt.Errorf("setup: %s must be in [1, %d]", name, int(MaxRetention/(24*time.Hour)))
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// EnvLoader is the deployed function's Loader: the functions' configuration (admin token from INFLUX_TOKEN or SSM),
// with the event's properties in place of their variables (InfluxUrl, InfluxOrg, InfluxTokenParameter, Buckets,
// RoleTokenPrefix), and with a role token prefix the role tokens kept as SSM SecureStrings under it. When the
// properties name an admin token parameter that cannot be read (the function's policy names the current one only),
// the current one is used. store may be nil (the default SSM client).
func EnvLoader(getenv config.Getenv, store config.ParameterStore) Loader {
	return func(ctx context.Context, t Target) (*influx.Client, Options, error) {
		get := withProperties(getenv, t.Properties)
		cfg, err := config.Load(ctx, get, store)
		if err != nil && get("INFLUX_TOKEN_PARAMETER") != getenv("INFLUX_TOKEN_PARAMETER") {
			cfg, err = config.Load(ctx, func(k string) string {
				if k == "INFLUX_TOKEN_PARAMETER" {
					return getenv(k)
				}
				return get(k)
			}, store)
		}
		if err != nil {
			return nil, Options{}, err
		}
		o := OptionsFrom(cfg)
		o.Generation = t.Generation
		if prefix := get("ROLE_TOKEN_PREFIX"); prefix != "" {
			sc, err := roleSSM(ctx, store)
			if err != nil {
				return nil, Options{}, err
			}
			o.Roles, o.Owner = &SSMStore{Client: sc, Prefix: prefix, Generation: t.Generation, Stack: t.StackID}, prefix
		}
		return influx.New(cfg.InfluxURL, cfg.Token.Reveal(), cfg.Org, influx.Options{}), o, nil
	}
}

// propertyVars maps InfluxSetup's properties (template.yaml) to the variables they stand for.
var propertyVars = map[string]string{"InfluxUrl": "INFLUX_URL", "InfluxOrg": "INFLUX_ORG",
	"InfluxTokenParameter": "INFLUX_TOKEN_PARAMETER", "RoleTokenPrefix": "ROLE_TOKEN_PREFIX"}

// withProperties reads a variable from the properties when they carry it, else from getenv. Buckets is
// "<data>,<downsampled>" ("<data>,<registry>,<downsampled>" in the properties of a stack deployed before the state
// table: its registry bucket is left alone).
func withProperties(getenv config.Getenv, props map[string]any) config.Getenv {
	vars := map[string]string{}
	for p, v := range propertyVars {
		if s, ok := props[p].(string); ok && s != "" {
			vars[v] = s
		}
	}
	if s, ok := props["Buckets"].(string); ok {
		switch b := strings.Split(s, ","); len(b) {
		case 2:
			vars["INFLUX_BUCKET"], vars["INFLUX_BUCKET_DOWNSAMPLED"] = b[0], b[1]
		case 3:
			vars["INFLUX_BUCKET"], vars["INFLUX_BUCKET_DOWNSAMPLED"] = b[0], b[2]
		}
	}
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return getenv(k)
	}
}

// roleSSM is the SSM client the role tokens are written with: store itself when it can write (tests pass one),
// else the default client.
func roleSSM(ctx context.Context, store config.ParameterStore) (SSMClient, error) {
	if sc, ok := store.(SSMClient); ok {
		return sc, nil
	}
	return config.DefaultSSM(ctx)
}
