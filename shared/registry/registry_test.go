package registry

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// The routes' tests live in shared/deviceapi; these test the registry's own Go API against the state table.

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

type fixture struct {
	t     *testing.T
	reg   *Registry
	table *store.Table
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := influxtest.Shared(t)
	table := influxtest.StateTable(t)
	return &fixture{t: t, reg: New(srv.Client(t), srv.Config(srv.NewBucket(t, "data")), table), table: table}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCredentialShape(t *testing.T) {
	cred, hash := newCredential("dev_1.a-b")
	for _, tc := range []struct {
		in     string
		wantID string
		ok     bool
	}{
		{cred.Reveal(), "dev_1.a-b", true},
		{CredentialPrefix + "x_" + strings.Repeat("0", 64), "x", true},
		{CredentialPrefix + "x_" + strings.Repeat("0", 63), "", false},
		{CredentialPrefix + "x_" + strings.Repeat("A", 64), "", false},
		{CredentialPrefix + "_" + strings.Repeat("0", 64), "", false},
		{CredentialPrefix + "a b_" + strings.Repeat("0", 64), "", false},
		{"influx-token==", "", false},
		{"", "", false},
	} {
		id, ok := CredentialDeviceID(tc.in)
		if ok != tc.ok || (ok && id != tc.wantID) {
			t.Errorf("CredentialDeviceID(%.20q…) = %q %v, want %q %v", tc.in, id, ok, tc.wantID, tc.ok)
		}
	}
	if len(cred.Reveal()) != len(CredentialPrefix)+len("dev_1.a-b")+1+64 || hash != hashCredential(cred.Reveal()) || len(hash) != 64 {
		t.Errorf("credential %d chars, hash %q", len(cred.Reveal()), hash)
	}
	if again, _ := newCredential("dev_1.a-b"); again == cred {
		t.Error("two credentials are equal")
	}
}

// TestRecordRoundTripsAwkwardToken: a token holding line-protocol and CSV syntax is stored and read back intact.
func TestRecordRoundTripsAwkwardToken(t *testing.T) {
	f := newFixture(t)
	id := "awk-" + influxtest.RandomID(4)
	tok := `a"b\c,d=e f` + "\n" + `g==`
	now := time.Now().UTC().Truncate(time.Millisecond)
	in := Device{ID: id, AuthorizationID: "0123456789abcdef", Token: config.Secret(tok), CreatedAt: now, UpdatedAt: now, Generation: 1}
	if err := f.reg.put(ctxT(t), in, Device{}); err != nil {
		t.Fatal(err)
	}
	got, err := f.reg.Get(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Token.Reveal() != tok || got.AuthorizationID != in.AuthorizationID || !got.CreatedAt.Equal(now) || !got.UpdatedAt.Equal(now) {
		t.Errorf("got %q %s %s %s, want %q %s %s", got.Token.Reveal(), got.AuthorizationID, got.CreatedAt, got.UpdatedAt, tok, in.AuthorizationID, now)
	}
	if _, err := f.reg.Get(ctxT(t), "no-such-"+id); !api.IsCode(err, api.NotFound) {
		t.Errorf("unknown id: got %v, want not found", err)
	}
	if _, err := f.reg.Get(ctxT(t), `x" or true or "`); !api.IsCode(err, api.Invalid) {
		t.Errorf("invalid id: got %v, want invalid", err)
	}
}

// putDevices writes device items directly (as the migration does), and tombstones over the deleted ids (put
// among ds at generation 1).
func (f *fixture) putDevices(ds []Device, deleted ...string) {
	f.t.Helper()
	for _, d := range ds {
		if err := f.reg.put(ctxT(f.t), d, Device{}); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, id := range deleted {
		live := Device{ID: id, Generation: 1, AuthorizationID: "registered"}
		if err := f.reg.put(ctxT(f.t), Device{ID: id, Generation: 2, deleted: true}, live); err != nil {
			f.t.Fatal(err)
		}
	}
}

// TestListAndListOf: List reads every live device item, sorted, without secrets; tombstones are not devices;
// ListOf reads only the listed devices (an unknown id is simply absent).
func TestListAndListOf(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dev := func(id, auth string) Device {
		return Device{ID: id, AuthorizationID: auth, Token: config.Secret("tok-" + auth), CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), Generation: 1}
	}
	f.putDevices([]Device{dev("rotated", "b3"), dev("one", "a1"), dev("tie", "c2"), dev("gone", "d1")}, "gone")
	got, err := f.reg.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{dev("one", "a1"), dev("rotated", "b3"), dev("tie", "c2")}
	for i := range want {
		want[i].Token = ""
	}
	sameDevices(t, "List", got, want)
	some, err := f.reg.ListOf(ctxT(t), []string{"tie", "nobody", "rotated", "rot", "gone", "tie"})
	if err != nil {
		t.Fatal(err)
	}
	sameDevices(t, "ListOf", some, want[1:])
	if none, err := f.reg.ListOf(ctxT(t), []string{}); err != nil || len(none) != 0 {
		t.Errorf("ListOf(no ids) = %v, %v; want nothing", none, err)
	}
}

func sameDevices(t *testing.T, what string, got, want []Device) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d devices %+v, want %d", what, len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.AuthorizationID != w.AuthorizationID || !g.CreatedAt.Equal(w.CreatedAt) ||
			!g.UpdatedAt.Equal(w.UpdatedAt) || !g.Token.Empty() {
			t.Errorf("%s: device %d: got %s %s created %v updated %v (token read: %v), want %s %s created %v updated %v",
				what, i, g.ID, g.AuthorizationID, g.CreatedAt, g.UpdatedAt, !g.Token.Empty(), w.ID, w.AuthorizationID,
				w.CreatedAt, w.UpdatedAt)
		}
	}
}
