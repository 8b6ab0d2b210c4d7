package deviceapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
)

// race sends the requests at once, request i through handler i%len(hs), and returns the responses in order.
func race(t *testing.T, hs []http.Handler, reqs [][3]string) []*httptest.ResponseRecorder {
	t.Helper()
	out := make([]*httptest.ResponseRecorder, len(reqs))
	testenv.Together(len(reqs), func(i int) {
		out[i] = do(t, hs[i%len(hs)], reqs[i][0], reqs[i][1], reqs[i][2])
	})
	return out
}

// instances builds n independent handler instances, each with its own InfluxDB client and caches.
func (f *fixture) instances(n int) []http.Handler {
	f.t.Helper()
	hs := make([]http.Handler, n)
	for i := range hs {
		_, hs[i] = f.instance()
	}
	return hs
}

// settled checks the device's end state: either nothing (no authorization, no record) or exactly one
// authorization, the record naming it, and its token writing the data bucket. It returns the live token, if any.
func (f *fixture) settled(id string) string {
	f.t.Helper()
	as := f.auths(id)
	d, err := f.reg.Get(ctxT(f.t), id)
	switch {
	case len(as) == 0 && err != nil:
		return ""
	case len(as) != 1 || err != nil:
		f.t.Fatalf("%s: inconsistent end state: %d authorizations, record err %v", id, len(as), err)
	case d.AuthorizationID != as[0].ID:
		f.t.Fatalf("%s: the record names %s, the live authorization is %s", id, d.AuthorizationID, as[0].ID)
	}
	if s := f.writeAs(d.Token.Reveal(), f.cfg.Bucket, id, 7); s != http.StatusNoContent {
		f.t.Fatalf("%s: the recorded token cannot write: %d", id, s)
	}
	return d.Token.Reveal()
}

func TestConcurrentFirstRegistration(t *testing.T) {
	for _, tc := range []struct {
		name      string
		method    string
		path      string
		instances int
	}{
		{"GET env, 5 instances", "GET", "/api/env/", 5},
		{"POST register, 10 instances", "POST", "/api/devices/", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			id := f.newID("race")
			reqs := repeated(50, tc.method, tc.path+id)
			res := race(t, f.instances(tc.instances), reqs)
			tokens, newly, created := map[string]int{}, 0, 0
			for i, w := range res {
				if w.Code != http.StatusOK && w.Code != http.StatusCreated {
					t.Fatalf("caller %d: got %d %s, want 200/201", i, w.Code, w.Body.String())
				}
				if w.Code == http.StatusCreated {
					created++
				}
				c := decode[EnvConfig](t, w)
				tokens[c.InfluxToken]++
				if c.NewlyRegistered {
					newly++
				}
			}
			if len(tokens) != 1 {
				t.Errorf("distinct tokens: got %d, want 1", len(tokens))
			}
			if newly != 1 {
				t.Errorf("newlyRegistered callers: got %d, want 1", newly)
			}
			if tc.method == "POST" && created != 1 {
				t.Errorf("201 answers: got %d, want 1", created)
			}
			live := f.settled(id)
			if tokens[live] != len(res) {
				t.Errorf("callers holding the live token: got %d, want %d", tokens[live], len(res))
			}
		})
	}
}

// repeated is n copies of one request (method, path, no query) for race.
func repeated(n int, method, path string) [][3]string {
	reqs := make([][3]string, n)
	for i := range reqs {
		reqs[i] = [3]string{method, path, ""}
	}
	return reqs
}

func TestConcurrentRotate(t *testing.T) {
	f := newFixture(t)
	id := f.newID("rotrace")
	old := f.envOK(f.h, id).InfluxToken
	reqs := repeated(12, "POST", "/api/devices/"+id+"/rotate")
	res := race(t, f.instances(4), reqs)
	tokens := map[string]bool{}
	for i, w := range res {
		if w.Code != http.StatusOK {
			t.Fatalf("rotate %d: got %d %s, want 200", i, w.Code, w.Body.String())
		}
		tokens[decode[EnvConfig](t, w).InfluxToken] = true
	}
	live := f.settled(id)
	if live == "" || live == old {
		t.Fatalf("after rotations: live token empty=%v unchanged=%v", live == "", live == old)
	}
	if !tokens[live] {
		t.Errorf("no caller received the live token")
	}
	for tok := range tokens {
		if tok != live {
			if s := f.writeAs(tok, f.cfg.Bucket, id, 1); s != http.StatusUnauthorized {
				t.Errorf("superseded token write: got %d, want 401", s)
			}
		}
	}
	if s := f.writeAs(old, f.cfg.Bucket, id, 1); s != http.StatusUnauthorized {
		t.Errorf("original token write: got %d, want 401", s)
	}
}

func TestConcurrentDeleteRotateRegister(t *testing.T) {
	for round := range 3 {
		f := newFixture(t)
		id := f.newID("mix")
		f.envOK(f.h, id)
		var reqs [][3]string
		for range 4 {
			reqs = append(reqs, [3]string{"DELETE", "/api/devices/" + id, ""},
				[3]string{"POST", "/api/devices/" + id + "/rotate", ""},
				[3]string{"GET", "/api/env/" + id, ""})
		}
		res := race(t, f.instances(4), reqs)
		deleted := 0
		for i, w := range res {
			switch w.Code {
			case http.StatusOK, http.StatusNotFound, http.StatusConflict:
			case http.StatusNoContent:
				deleted++
			default:
				t.Errorf("round %d: %s %s: got %d %s", round, reqs[i][0], reqs[i][1], w.Code, w.Body.String())
			}
		}
		if deleted == 0 {
			t.Errorf("round %d: no delete succeeded", round)
		}
		f.settled(id)
	}
}

func TestConcurrentDeletes(t *testing.T) {
	f := newFixture(t)
	id := f.newID("deld")
	tok := f.envOK(f.h, id).InfluxToken
	reqs := repeated(10, "DELETE", "/api/devices/"+id)
	ok := 0
	for i, w := range race(t, f.instances(4), reqs) {
		switch w.Code {
		case http.StatusNoContent:
			ok++
		case http.StatusNotFound:
		default:
			t.Errorf("delete %d: got %d %s, want 204/404", i, w.Code, w.Body.String())
		}
	}
	if ok == 0 {
		t.Errorf("no delete answered 204")
	}
	if got := f.settled(id); got != "" {
		t.Errorf("device still registered after the deletes")
	}
	if s := f.writeAs(tok, f.cfg.Bucket, id, 1); s != http.StatusUnauthorized {
		t.Errorf("deleted token write: got %d, want 401", s)
	}
}
