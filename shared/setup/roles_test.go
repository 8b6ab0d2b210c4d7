package setup

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// roleAuths counts the owner's live authorizations per role.
func roleAuths(t *testing.T, c *influx.Client, owner string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range Roles {
		as, err := c.FindAuthorizations(testCtx(t, 30*time.Second), roleDescription(r.Name, owner, ""))
		if err != nil {
			t.Fatal(err)
		}
		out[r.Name] = len(as)
	}
	return out
}

// writeAs writes one point into bucket with token and returns InfluxDB's status.
func writeAs(t *testing.T, srv *influxtest.Server, token, bucket string) int {
	t.Helper()
	q := url.Values{"org": {srv.Org}, "bucket": {bucket}, "precision": {"s"}}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v2/write?"+q.Encode(), strings.NewReader(fmt.Sprintf("environment,clientId=r T=1 %d", time.Now().Unix())))
	req.Header.Set("Authorization", "Token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// readAs queries bucket with token and returns InfluxDB's status.
func readAs(t *testing.T, srv *influxtest.Server, token, bucket string) int {
	t.Helper()
	body := fmt.Sprintf(`{"query":"from(bucket: \"%s\") |> range(start: -1m) |> limit(n: 1)","type":"flux"}`, bucket)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v2/query?org="+url.QueryEscape(srv.Org), strings.NewReader(body))
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRoleTokens(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	o := testOptions(t, srv)
	store := &FileStore{Path: filepath.Join(t.TempDir(), "tokens.env")}
	o.Roles, o.Owner = store, "test "+influxtest.RandomID(4)
	t.Cleanup(func() { _ = RevokeGeneration(context.Background(), c, store, o.Owner, "") })
	ctx := testCtx(t, 2*time.Minute)
	if _, err := Run(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	first, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Roles {
		if first[r.Name] == "" {
			t.Fatalf("no %s token stored: %v", r.Name, keysOf(first))
		}
	}

	// each token can do what its role needs and nothing else: 204/200 where granted, 401/403/404 elsewhere
	buckets := map[string]string{DataBucket: o.Bucket, DownsampledBucket: o.BucketDownsampled}
	for _, r := range Roles {
		for kind, bucket := range buckets {
			granted := map[string]bool{}
			for _, g := range r.Grants {
				if g.Bucket == kind {
					granted[g.Action] = true
				}
			}
			if got := writeAs(t, srv, first[r.Name], bucket); (got == http.StatusNoContent) != granted["write"] {
				t.Errorf("%s writing %s: got %d, granted %v", r.Name, kind, got, granted["write"])
			}
			if got := readAs(t, srv, first[r.Name], bucket); (got == http.StatusOK) != granted["read"] {
				t.Errorf("%s reading %s: got %d, granted %v", r.Name, kind, got, granted["read"])
			}
		}
	}

	// a rerun keeps every token (warm functions go on working) and leaves one authorization per role
	res, err := Run(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := store.All()
	for _, r := range Roles {
		if again[r.Name] != first[r.Name] {
			t.Errorf("rerun replaced the %s token", r.Name)
		}
	}
	if len(res.Created) != 0 {
		t.Errorf("rerun created %v, want nothing", res.Created)
	}
	for role, n := range roleAuths(t, c, o.Owner) {
		if n != 1 {
			t.Errorf("%s: %d authorizations, want 1", role, n)
		}
	}

	// a revoked authorization, a lost and a stale stored token are replaced; the old authorization is revoked
	as, _ := c.FindAuthorizations(ctx, roleDescription("query", o.Owner, ""))
	if err := c.DeleteAuthorization(ctx, as[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, "worker"); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, "planner", "not-a-token"); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	third, _ := store.All()
	for _, role := range []string{"query", "worker", "planner"} {
		if third[role] == "" || third[role] == first[role] {
			t.Errorf("%s: token not replaced", role)
		}
		if got := readAs(t, srv, third[role], o.Bucket); got != http.StatusOK {
			t.Errorf("%s: new token reads the data bucket with %d", role, got)
		}
	}
	if got := readAs(t, srv, first["worker"], o.Bucket); got != http.StatusUnauthorized {
		t.Errorf("the replaced worker token still reads: %d, want 401", got)
	}
	if third["data-read"] != first["data-read"] {
		t.Errorf("an untouched role's token changed")
	}
	for role, n := range roleAuths(t, c, o.Owner) {
		if n != 1 {
			t.Errorf("after replacement %s: %d authorizations, want 1", role, n)
		}
	}

	// stack delete: every role authorization revoked, every stored token gone
	if err := RevokeGeneration(ctx, c, store, o.Owner, ""); err != nil {
		t.Fatal(err)
	}
	for role, n := range roleAuths(t, c, o.Owner) {
		if n != 0 {
			t.Errorf("after revoke %s: %d authorizations, want 0", role, n)
		}
	}
	if left, _ := store.All(); len(left) != 0 {
		t.Errorf("after revoke the store holds %v", keysOf(left))
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
