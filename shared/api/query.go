package api

import (
	"net/http"
	"net/url"
	"slices"
)

// maxEchoedParam bounds the length of an unknown parameter name that an error message repeats.
const maxEchoedParam = 32

// Query parses r's query string and refuses what the route does not take: a malformed string, a parameter not in
// allowed, a parameter given twice, and `key` (keys travel only in the Authorization header, never in a URL). A
// hostile query never reaches a handler; an unknown name is repeated in the answer only when it is short and has
// the harmless shape of a device id.
func Query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, InvalidParam("query", "the query string is malformed")
	}
	if _, ok := q["key"]; ok && !slices.Contains(allowed, "key") {
		// the authorizer already refuses it; kept here so no handler ever accepts a key in the URL
		return nil, InvalidParam("key", "keys are accepted only in the Authorization header (Bearer <key>), never in the URL")
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			if len(k) > maxEchoedParam || !ValidDeviceID(k) {
				return nil, InvalidParam("query", "unknown query parameter")
			}
			return nil, InvalidParam(k, "unknown query parameter %s", k)
		}
		if len(vs) != 1 {
			return nil, InvalidParam(k, "%s must be given once", k)
		}
	}
	return q, nil
}
