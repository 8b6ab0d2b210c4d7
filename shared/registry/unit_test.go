package registry

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
)

// TestRecordRoundTripsAwkwardToken: a token holding line-protocol and CSV syntax is stored and read back intact.
func TestRecordRoundTripsAwkwardToken(t *testing.T) {
	f := newFixture(t)
	id := f.newID("awk")
	tok := `a"b\c,d=e f` + "\n" + `g==`
	now := time.Now().UTC().Truncate(time.Millisecond)
	in := Device{ID: id, AuthorizationID: "0123456789abcdef", Token: config.Secret(tok), CreatedAt: now, UpdatedAt: now, Generation: 1}
	if err := f.reg.put(ctxT(t), in, "attribute_not_exists(pk)", nil); err != nil {
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
