package setup

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
)

// TestCustomResourceRoleTokensInSSM: the deployed function's path (EnvLoader with ROLE_TOKEN_PREFIX) on moto,
// standing in for SSM, and the real InfluxDB: Create writes one SecureString per role under the prefix, Delete
// revokes the role authorizations and deletes the parameters.
func TestCustomResourceRoleTokensInSSM(t *testing.T) {
	srv := influxtest.Shared(t)
	sc := testenv.MotoSSM(t)
	o := testOptions(t, srv)
	prefix := "/iot-test/" + influxtest.RandomID(4) + "/roles"
	env := map[string]string{"INFLUX_URL": srv.URL, "INFLUX_ORG": srv.Org, "INFLUX_TOKEN": srv.Token, "INFLUX_BUCKET": o.Bucket,
		"INFLUX_BUCKET_AUTH": o.BucketAuth, "INFLUX_BUCKET_DOWNSAMPLED": o.BucketDownsampled, "ROLE_TOKEN_PREFIX": prefix}
	h := NewCustomResource(EnvLoader(func(k string) string { return env[k] }, sc))
	ep := newCFNEndpoint(t)
	ctx := testCtx(t, 2*time.Minute)
	store := &SSMStore{Client: sc, Prefix: prefix}

	if err := h.Handle(ctx, event(ep, cfn.RequestCreate, "", nil)); err != nil {
		t.Fatal(err)
	}
	if r := ep.only(t); r.Status != cfn.StatusSuccess {
		t.Fatalf("create: %s %q", r.Status, r.Reason)
	}
	c := srv.Client(t)
	for _, r := range Roles {
		out, err := sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(store.Name(r.Name)), WithDecryption: aws.Bool(true)})
		if err != nil || out.Parameter.Type != types.ParameterTypeSecureString || aws.ToString(out.Parameter.Value) == "" {
			t.Fatalf("%s: %v %+v, want a SecureString", store.Name(r.Name), err, out)
		}
		if as, _ := c.FindAuthorizations(ctx, roleDescription(r.Name, prefix)); len(as) != 1 {
			t.Errorf("%s: %d authorizations, want 1", r.Name, len(as))
		}
	}

	if err := h.Handle(ctx, event(ep, cfn.RequestDelete, PhysicalID, nil)); err != nil {
		t.Fatal(err)
	}
	if r := ep.only(t); r.Status != cfn.StatusSuccess {
		t.Fatalf("delete: %s %q", r.Status, r.Reason)
	}
	for _, r := range Roles {
		_, err := sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(store.Name(r.Name))})
		var nf *types.ParameterNotFound
		if !errors.As(err, &nf) {
			t.Errorf("%s after delete: %v, want ParameterNotFound", store.Name(r.Name), err)
		}
		if as, _ := c.FindAuthorizations(ctx, roleDescription(r.Name, prefix)); len(as) != 0 {
			t.Errorf("%s after delete: %d authorizations, want 0", r.Name, len(as))
		}
	}
}
