package setup

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

// countingSSM is moto's SSM client (the stand-in for SSM) counting GetParameter calls.
type countingSSM struct {
	*ssm.Client
	gets atomic.Int32
}

func (c *countingSSM) GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	c.gets.Add(1)
	return c.Client.GetParameter(ctx, in, opts...)
}

// stack is the setup custom resource of one test stack: the deployed function's path (EnvLoader) over moto's SSM and
// a real InfluxDB, with the events CloudFormation sends.
type stack struct {
	t     *testing.T
	h     *CustomResource
	ep    *cfnEndpoint
	sc    *ssm.Client
	o     Options
	props map[string]any
}

func newStack(t *testing.T, srv *influxtest.Server, sc *ssm.Client, env map[string]string) *stack {
	t.Helper()
	o := testOptions(t, srv)
	for k, v := range map[string]string{"INFLUX_ORG": srv.Org, "INFLUX_BUCKET": o.Bucket,
		"INFLUX_BUCKET_DOWNSAMPLED": o.BucketDownsampled} {
		env[k] = v
	}
	props := map[string]any{"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:setup", "InfluxUrl": env["INFLUX_URL"],
		"InfluxOrg": srv.Org, "InfluxTokenParameter": env["INFLUX_TOKEN_PARAMETER"], "RoleTokenPrefix": env["ROLE_TOKEN_PREFIX"],
		"Buckets": o.Bucket + "," + o.BucketDownsampled, "RolesVersion": "1", "DataRetentionDays": "30"}
	return &stack{t: t, h: NewCustomResource(EnvLoader(func(k string) string { return env[k] }, sc)), ep: newCFNEndpoint(t),
		sc: sc, o: o, props: props}
}

// adminStack is a stack whose setup reads the admin token from its environment, role tokens under a fresh prefix
// in moto's SSM (the stand-in for SSM), and a context for the test's events.
func adminStack(t *testing.T) (*influxtest.Server, *ssm.Client, string, *stack, context.Context) {
	t.Helper()
	srv := influxtest.Shared(t)
	moto := testenv.MotoSSM(t)
	prefix := "/iot-test/" + influxtest.RandomID(4) + "/roles"
	s := newStack(t, srv, moto, map[string]string{"INFLUX_URL": srv.URL, "INFLUX_TOKEN": srv.Token, "ROLE_TOKEN_PREFIX": prefix})
	return srv, moto, prefix, s, testCtx(t, 3*time.Minute)
}

// send handles one event and returns CloudFormation's answer, which must be SUCCESS.
func (s *stack) send(ctx context.Context, typ cfn.RequestType, physical string, props, old map[string]any) response {
	s.t.Helper()
	ev := event(s.ep, typ, physical, props)
	ev.OldResourceProperties = old
	if err := s.h.Handle(ctx, ev); err != nil {
		s.t.Fatal(err)
	}
	r := s.ep.only(s.t)
	if r.Status != cfn.StatusSuccess {
		s.t.Fatalf("%s: %s %q, want SUCCESS", typ, r.Status, r.Reason)
	}
	return r
}

// update changes props like a stack update: Update with the new and old properties; the old ones are returned.
func (s *stack) update(ctx context.Context, physical string, change map[string]any) (string, map[string]any) {
	s.t.Helper()
	old := map[string]any{}
	for k, v := range s.props {
		old[k] = v
	}
	for k, v := range change {
		s.props[k] = v
	}
	return s.send(ctx, cfn.RequestUpdate, physical, s.props, old).PhysicalResourceID, old
}

func (s *stack) param(ctx context.Context, name string) (string, bool) {
	s.t.Helper()
	out, err := s.sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	var nf *types.ParameterNotFound
	if errors.As(err, &nf) {
		return "", false
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if out.Parameter.Type != types.ParameterTypeSecureString {
		s.t.Errorf("%s is a %s, want a SecureString", name, out.Parameter.Type)
	}
	return aws.ToString(out.Parameter.Value), true
}

// auths counts the live authorizations of (owner, generation) per role.
func auths(t *testing.T, c *influx.Client, owner, gen string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range Roles {
		as, err := c.FindAuthorizations(testCtx(t, 30*time.Second), roleDescription(r.Name, owner, gen))
		if err != nil {
			t.Fatal(err)
		}
		out[r.Name] = len(as)
	}
	return out
}

func wantAuths(t *testing.T, what string, got map[string]int, want int) {
	t.Helper()
	for role, n := range got {
		if n != want {
			t.Errorf("%s: %s has %d authorizations, want %d", what, role, n, want)
		}
	}
}

func gen(t *testing.T, physical string) string {
	t.Helper()
	g, ok := generationOf(physical)
	if !ok || g == "" {
		t.Fatalf("physical id %q names no generation", physical)
	}
	return g
}

// TestRoleTokenReplacementKeepsFunctionsWorking: a stack update that replaces the role tokens (RolesVersion) answers
// a new physical id and leaves the old tokens valid; a function that read its token at cold start (the function
// code: lambdaapp over moto's SSM, the stand-in for SSM) keeps working through the update, and after
// CloudFormation's Delete of the old id (old properties) revokes the old generation it re-reads SSM once on the
// 401 and goes on. The Delete leaves the new generation's parameters and authorizations alone.
func TestRoleTokenReplacementKeepsFunctionsWorking(t *testing.T) {
	srv, moto, prefix, s, ctx := adminStack(t)
	admin := srv.Client(t)
	store := &SSMStore{Prefix: prefix}

	first := s.send(ctx, cfn.RequestCreate, "", s.props, nil).PhysicalResourceID
	g1 := gen(t, first)
	wantAuths(t, "create", auths(t, admin, prefix, g1), 1)

	// a warm worker function: its token read once at cold start, from SSM
	fnSSM := &countingSSM{Client: moto}
	fnEnv := map[string]string{"INFLUX_URL": srv.URL, "INFLUX_ORG": srv.Org, "INFLUX_TOKEN_PARAMETER": store.Name("worker"),
		"INFLUX_BUCKET": s.o.Bucket, "INFLUX_BUCKET_DOWNSAMPLED": s.o.BucketDownsampled}
	fn, err := lambdaapp.New(ctx, func(k string) string { return fnEnv[k] }, fnSSM)
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Influx.Close()
	work := func(what string) {
		t.Helper()
		line := "environment,clientId=replacement Temperature=1\n"
		if err := fn.Influx.WriteLines(ctx, s.o.Bucket, []byte(line)); err != nil {
			t.Fatalf("%s: the function's write failed: %v", what, err)
		}
		if err := fn.Influx.QueryRows(ctx, `from(bucket: b) |> range(start: -1h) |> limit(n: 1)`, influx.Extern{"b": s.o.Bucket},
			func(map[string]any) error { return nil }); err != nil {
			t.Fatalf("%s: the function's query failed: %v", what, err)
		}
	}
	work("before the update")
	oldToken, _ := s.param(ctx, store.Name("worker"))

	// the update replaces the tokens: a new id, new parameters' values, both generations valid
	second, oldProps := s.update(ctx, first, map[string]any{"RolesVersion": "2"})
	g2 := gen(t, second)
	if g2 == g1 {
		t.Fatalf("update: physical id %s unchanged, want a new generation (a replacement)", second)
	}
	newToken, _ := s.param(ctx, store.Name("worker"))
	if newToken == oldToken || newToken == "" {
		t.Fatalf("update: the worker parameter was not replaced")
	}
	wantAuths(t, "after the update, old generation", auths(t, admin, prefix, g1), 1)
	wantAuths(t, "after the update, new generation", auths(t, admin, prefix, g2), 1)
	work("during the update (old token)")

	// CloudFormation's clean-up: Delete of the old id with the old properties
	s.send(ctx, cfn.RequestDelete, first, oldProps, nil)
	wantAuths(t, "after the clean-up, old generation", auths(t, admin, prefix, g1), 0)
	wantAuths(t, "after the clean-up, new generation", auths(t, admin, prefix, g2), 1)
	if got := readAs(t, srv, oldToken, s.o.Bucket); got != http.StatusUnauthorized {
		t.Errorf("the old worker token after the clean-up: %d, want 401", got)
	}
	for _, r := range Roles {
		if v, ok := s.param(ctx, store.Name(r.Name)); !ok || v == "" {
			t.Errorf("the clean-up deleted %s, which holds the new generation's token", store.Name(r.Name))
		}
	}
	before := fnSSM.gets.Load()
	work("after the clean-up (401, one re-read)")
	if got := fnSSM.gets.Load() - before; got != 1 {
		t.Errorf("the function read SSM %d times after its token was revoked, want 1", got)
	}
	work("after the re-read")
	if got := fnSSM.gets.Load() - before; got != 1 {
		t.Errorf("SSM reads after the re-read: %d, want still 1", got)
	}

	// the stack's deletion removes the current generation
	s.send(ctx, cfn.RequestDelete, second, s.props, nil)
	wantAuths(t, "after the stack's deletion", auths(t, admin, prefix, g2), 0)
	for _, r := range Roles {
		if _, ok := s.param(ctx, store.Name(r.Name)); ok {
			t.Errorf("%s left after the stack's deletion", store.Name(r.Name))
		}
	}
}

// TestCleanUpAfterChangedPrefixAndServer: an update that moves the role tokens to another RoleTokenPrefix and
// another InfluxDB (a second real server; its admin token under a new parameter name) creates the new generation
// there, and the Delete of the old id, with the old properties, revokes the old server's role authorizations with
// the old admin token and deletes the parameters under the old prefix: nothing is left behind.
func TestCleanUpAfterChangedPrefixAndServer(t *testing.T) {
	oldSrv := influxtest.Shared(t)
	newSrv := influxtest.Start(t)
	moto := testenv.MotoSSM(t)
	ctx := testCtx(t, 3*time.Minute)
	id := influxtest.RandomID(4)
	oldPrefix, newPrefix := "/iot-test/"+id+"/roles", "/iot-test/"+id+"/moved"
	oldAdmin, newAdmin := "/iot-test/"+id+"/admin-old", "/iot-test/"+id+"/admin-new"
	for name, v := range map[string]string{oldAdmin: oldSrv.Token, newAdmin: newSrv.Token} {
		if _, err := moto.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(v),
			Type: types.ParameterTypeSecureString}); err != nil {
			t.Fatal(err)
		}
	}
	// the function's environment follows the template: after the update it names the new server, parameter and prefix
	env := map[string]string{"INFLUX_URL": oldSrv.URL, "INFLUX_TOKEN_PARAMETER": oldAdmin, "ROLE_TOKEN_PREFIX": oldPrefix}
	s := newStack(t, oldSrv, moto, env)

	first := s.send(ctx, cfn.RequestCreate, "", s.props, nil).PhysicalResourceID
	oldStore := &SSMStore{Prefix: oldPrefix}
	wantAuths(t, "create", auths(t, oldSrv.Client(t), oldPrefix, gen(t, first)), 1)

	env["INFLUX_URL"], env["INFLUX_ORG"], env["INFLUX_TOKEN_PARAMETER"], env["ROLE_TOKEN_PREFIX"] = newSrv.URL, newSrv.Org, newAdmin, newPrefix
	second, oldProps := s.update(ctx, first, map[string]any{"InfluxUrl": newSrv.URL, "InfluxOrg": newSrv.Org,
		"InfluxTokenParameter": newAdmin, "RoleTokenPrefix": newPrefix})
	if gen(t, second) == gen(t, first) {
		t.Fatalf("update: physical id unchanged, want a replacement")
	}
	newAdminClient := influx.New(newSrv.URL, newSrv.Token, newSrv.Org, influx.Options{})
	defer newAdminClient.Close()
	wantAuths(t, "new server", auths(t, newAdminClient, newPrefix, gen(t, second)), 1)

	s.send(ctx, cfn.RequestDelete, first, oldProps, nil)
	wantAuths(t, "old server after the clean-up", auths(t, oldSrv.Client(t), oldPrefix, gen(t, first)), 0)
	for _, r := range Roles {
		if _, ok := s.param(ctx, oldStore.Name(r.Name)); ok {
			t.Errorf("%s left under the old prefix", oldStore.Name(r.Name))
		}
		tok, ok := s.param(ctx, (&SSMStore{Prefix: newPrefix}).Name(r.Name))
		if !ok {
			t.Fatalf("%s: no parameter under the new prefix", r.Name)
		}
		if r.Name == "query" {
			if got := readAs(t, newSrv, tok, s.o.Bucket); got != http.StatusOK {
				t.Errorf("the new query token reads the new server's data bucket with %d, want 200", got)
			}
		}
	}
	wantAuths(t, "new server after the clean-up", auths(t, newAdminClient, newPrefix, gen(t, second)), 1)
	s.send(ctx, cfn.RequestDelete, second, s.props, nil)
	wantAuths(t, "new server after the stack's deletion", auths(t, newAdminClient, newPrefix, gen(t, second)), 0)
}

// TestLegacySetupMovesToGenerations: a stack set up before generations (fixed physical id, untagged parameters)
// gets a generation on its next update; the legacy id's Delete then revokes only the legacy authorizations.
func TestLegacySetupMovesToGenerations(t *testing.T) {
	srv, moto, prefix, s, ctx := adminStack(t)
	admin := srv.Client(t)

	// the legacy setup: generation "" under the fixed id
	legacy := &SSMStore{Client: moto, Prefix: prefix}
	o := s.o
	o.Roles, o.Owner = legacy, prefix
	if _, err := Run(ctx, admin, o); err != nil {
		t.Fatal(err)
	}
	wantAuths(t, "legacy", auths(t, admin, prefix, ""), 1)

	next, old := s.update(ctx, LegacyPhysicalID, map[string]any{"DataRetentionDays": "14"})
	g := gen(t, next)
	s.send(ctx, cfn.RequestDelete, LegacyPhysicalID, old, nil)
	wantAuths(t, "legacy after its Delete", auths(t, admin, prefix, ""), 0)
	wantAuths(t, "new generation after the legacy Delete", auths(t, admin, prefix, g), 1)
	for _, r := range Roles {
		if _, ok := s.param(ctx, legacy.Name(r.Name)); !ok {
			t.Errorf("the legacy Delete removed %s (the new generation's)", legacy.Name(r.Name))
		}
	}
	s.send(ctx, cfn.RequestDelete, next, s.props, nil)
	wantAuths(t, "after the stack's deletion", auths(t, admin, prefix, g), 0)
}

// TestRetentionUpdateKeepsTheGeneration: an update of a property tokens do not depend on keeps the physical id
// (no replacement, so CloudFormation sends no Delete) and every token.
func TestRetentionUpdateKeepsTheGeneration(t *testing.T) {
	srv, _, prefix, s, ctx := adminStack(t)
	first := s.send(ctx, cfn.RequestCreate, "", s.props, nil).PhysicalResourceID
	store := &SSMStore{Prefix: prefix}
	before, _ := s.param(ctx, store.Name("query"))
	next, _ := s.update(ctx, first, map[string]any{"DataRetentionDays": "14", "DownsampledRetentionDays": "100"})
	if next != first {
		t.Errorf("a retention update answered %s, want the same id %s", next, first)
	}
	if after, _ := s.param(ctx, store.Name("query")); after != before {
		t.Errorf("a retention update replaced the query token")
	}
	s.send(ctx, cfn.RequestDelete, next, s.props, nil)
	wantAuths(t, "after the stack's deletion", auths(t, srv.Client(t), prefix, gen(t, first)), 0)
}

// TestFailedReplacementKeepsTheOldGeneration: an update that would start a new generation but fails answers FAILED
// with the old id (CloudFormation keeps it and rolls back) and leaves the old tokens, parameters and
// authorizations as they were, with no authorization of the failed generation left.
func TestFailedReplacementKeepsTheOldGeneration(t *testing.T) {
	srv, _, prefix, s, ctx := adminStack(t)
	admin := srv.Client(t)
	first := s.send(ctx, cfn.RequestCreate, "", s.props, nil).PhysicalResourceID
	store := &SSMStore{Prefix: prefix}
	before, _ := s.param(ctx, store.Name("worker"))
	countAll := func() int {
		t.Helper()
		all, err := admin.ListAuthorizations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range all {
			if strings.Contains(a.Description, "("+prefix+")") {
				n++
			}
		}
		return n
	}
	want := countAll()

	old := map[string]any{}
	for k, v := range s.props {
		old[k] = v
	}
	s.props["RolesVersion"], s.props["DownsampledRetentionDays"] = "2", "0"
	ev := event(s.ep, cfn.RequestUpdate, first, s.props)
	ev.OldResourceProperties = old
	if err := s.h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if r := s.ep.only(t); r.Status != cfn.StatusFailed || r.PhysicalResourceID != first {
		t.Fatalf("got %s with id %s, want FAILED with the old id %s", r.Status, r.PhysicalResourceID, first)
	}
	if after, _ := s.param(ctx, store.Name("worker")); after != before {
		t.Errorf("the failed update replaced the worker token")
	}
	if got := countAll(); got != want {
		t.Errorf("%d role authorizations after the failed update, want %d (the old generation's only)", got, want)
	}
	if got := readAs(t, srv, before, s.o.Bucket); got != http.StatusOK {
		t.Errorf("the old worker token after the failed update: %d, want 200", got)
	}
	s.send(ctx, cfn.RequestDelete, first, old, nil)
}
