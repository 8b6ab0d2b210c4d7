package api

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Content negotiation over every value of a header. A client sends `Accept-Encoding: deflate, gzip` as one value,
// but the API Gateway proxy (aws-lambda-go-api-proxy) splits comma-separated values into several, so reading
// Header.Get (the first value) would see "deflate" only. Every helper here reads all values and every element.

// HeaderElements returns the comma-separated elements of every value of header name, trimmed, empty ones dropped.
// (Quoted commas are not special: none of the headers read here carries one in its values.)
func HeaderElements(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// element is one list element with its q-value.
type element struct {
	value string // lower case, parameters other than q dropped
	q     float64
}

// qElements parses the elements' values and q-values; a q that does not parse (or lies outside [0, 1]) counts as 0,
// so a malformed preference never enables a representation.
func qElements(h http.Header, name string) []element {
	var out []element
	for _, e := range HeaderElements(h, name) {
		v, params, _ := strings.Cut(e, ";")
		el := element{value: strings.ToLower(strings.TrimSpace(v)), q: 1}
		for _, p := range strings.Split(params, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				el.q = f
			}
		}
		out = append(out, el)
	}
	return out
}

// NegotiateType returns the offer (a media type such as "text/csv") the Accept header prefers: the highest q of
// the most specific element matching it (type/subtype over type/* over */*), ties going to the offer the client
// listed first, then to the earlier offer. With no Accept header, or when it accepts none of the offers, the first
// offer (the default representation) is returned.
func NegotiateType(h http.Header, offers ...string) string {
	els := qElements(h, "Accept")
	best, bestQ, bestPos := "", 0.0, 0
	for _, offer := range offers {
		q, pos := matchType(els, offer)
		if q > bestQ || (q == bestQ && q > 0 && pos < bestPos) {
			best, bestQ, bestPos = offer, q, pos
		}
	}
	if best == "" && len(offers) > 0 {
		return offers[0]
	}
	return best
}

// matchType returns the q of the most specific element matching offer and that element's position (q 0 when none).
func matchType(els []element, offer string) (q float64, pos int) {
	typ, _, _ := strings.Cut(offer, "/")
	spec := -1
	for i, e := range els {
		mt := e.value
		if parsed, _, err := mime.ParseMediaType(e.value); err == nil {
			mt = parsed
		}
		s := -1
		switch {
		case mt == offer:
			s = 2
		case mt == typ+"/*":
			s = 1
		case mt == "*/*" || mt == "*":
			s = 0
		}
		if s > spec {
			spec, q, pos = s, e.q, i
		}
	}
	return q, pos
}

// AcceptsEncoding reports whether the Accept-Encoding header allows coding (e.g. "gzip"): an explicit element
// (x-gzip counts as gzip) decides by its q, else a "*" element with q > 0 allows it.
func AcceptsEncoding(h http.Header, coding string) bool {
	coding = strings.ToLower(coding)
	star, explicit, allowed := false, false, false
	for _, e := range qElements(h, "Accept-Encoding") {
		v := e.value
		if v == "x-"+coding {
			v = coding
		}
		switch v {
		case coding:
			// the highest q among explicit elements decides (a repeated entry cannot disable an allowed one)
			explicit = true
			allowed = allowed || e.q > 0
		case "*":
			star = star || e.q > 0
		}
	}
	if explicit {
		return allowed
	}
	return star
}

// NoneMatch reports whether an If-None-Match header lists etag (weak comparison, RFC 9110 13.1.2) or is "*".
func NoneMatch(h http.Header, etag string) bool {
	for _, t := range HeaderElements(h, "If-None-Match") {
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}
