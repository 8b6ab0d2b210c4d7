package registry

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

func TestPickWinner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rw := []influx.Permission{{Action: "read", Type: "buckets", BucketID: "data"}, {Action: "write", Type: "buckets", BucketID: "data"}}
	wo := []influx.Permission{{Action: "write", Type: "buckets", BucketID: "data"}}
	a := func(id string, sec int, active bool, p []influx.Permission) influx.Authorization {
		return influx.Authorization{ID: id, CreatedAt: t0.Add(time.Duration(sec) * time.Second), Active: active, Permissions: p}
	}
	for _, tc := range []struct {
		name       string
		auths      []influx.Authorization
		replaced   string
		after      time.Time
		wantWinner string
		wantBefore []string
		wantOK     bool
	}{
		{"first registration: oldest wins", []influx.Authorization{a("a", 1, true, rw), a("b", 2, true, rw), a("c", 3, true, rw)},
			"", time.Time{}, "a", nil, true},
		{"inactive and read-less skipped", []influx.Authorization{a("a", 1, false, rw), a("b", 2, true, wo), a("c", 3, true, rw)},
			"", time.Time{}, "c", []string{"a", "b"}, true},
		{"rotation: only newer than the replaced", []influx.Authorization{a("x", 0, true, rw), a("old", 1, true, rw), a("n1", 2, true, rw), a("n2", 3, true, rw)},
			"old", time.Time{}, "n1", []string{"x", "old"}, true},
		{"replaced gone: newer than its record time", []influx.Authorization{a("stray", 1, true, rw), a("n1", 5, true, rw)},
			"gone", t0.Add(3 * time.Second), "n1", []string{"gone", "stray"}, true},
		{"nothing valid", []influx.Authorization{a("a", 1, false, rw)}, "", time.Time{}, "", []string{"a"}, false},
		{"empty list", nil, "", time.Time{}, "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, before, ok := pick(tc.auths, tc.replaced, tc.after, func(a influx.Authorization) bool { return a.GrantsReadWrite("data") })
			var got []string
			for id := range before {
				got = append(got, id)
			}
			sort.Strings(got)
			want := slices.Clone(tc.wantBefore)
			sort.Strings(want)
			if ok != tc.wantOK || w.ID != tc.wantWinner || !slices.Equal(got, want) {
				t.Errorf("got winner %q ok=%v before %v, want %q ok=%v before %v", w.ID, ok, got, tc.wantWinner, tc.wantOK, want)
			}
		})
	}
}

// TestRecordRoundTripsAwkwardToken: a token holding line-protocol and CSV syntax is stored and read back intact.
func TestRecordRoundTripsAwkwardToken(t *testing.T) {
	f := newFixture(t)
	id := f.newID("awk")
	tok := `a"b\c,d=e f` + "\n" + `g==`
	now := time.Now().UTC().Truncate(time.Millisecond)
	in := Device{ID: id, AuthorizationID: "0123456789abcdef", Token: config.Secret(tok), CreatedAt: now, UpdatedAt: now}
	if err := f.reg.write(ctxT(t), in, now); err != nil {
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

// TestWantsTextNegotiates: every Accept value counts, as the API proxy splits a comma-separated header.
func TestWantsTextNegotiates(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"text/plain"}, true},
		{[]string{"application/json;q=0.5", "text/plain"}, true},
		{[]string{"application/json", "text/plain;q=0.9"}, false},
		{[]string{"text/plain;q=0", "*/*"}, false},
		{[]string{"text/html", "text/*"}, true},
	} {
		r := httptest.NewRequest("GET", "/api/env/a", nil)
		for _, v := range tc.values {
			r.Header.Add("Accept", v)
		}
		if got, err := wantsText(r, url.Values{}); err != nil || got != tc.want {
			t.Errorf("wantsText(Accept: %q) = %v, %v; want %v", tc.values, got, err, tc.want)
		}
	}
}
