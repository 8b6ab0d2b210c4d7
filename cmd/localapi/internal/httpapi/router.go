package httpapi

import (
	"net/url"
	"sort"
	"strings"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

type segKind int

// Lower kinds are more specific: API Gateway prefers a literal segment over a {param}, and a {param} over a
// greedy {proxy+}.
const (
	literal segKind = iota
	param
	greedy
)

type segment struct {
	kind segKind
	text string // the literal, or the parameter's name
}

type route struct {
	samtpl.Route
	segs []segment
}

func compileRoute(r samtpl.Route) route {
	out := route{Route: r}
	for _, s := range splitPath(r.Path) {
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
			out.segs = append(out.segs, segment{kind: greedy, text: s[1 : len(s)-2]})
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			out.segs = append(out.segs, segment{kind: param, text: s[1 : len(s)-1]})
		default:
			out.segs = append(out.segs, segment{kind: literal, text: s})
		}
	}
	return out
}

// splitPath splits "/a/b" into [a b]; "/" is no segment at all.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match returns the path parameters when the route's path matches the (escaped) request path segments.
func (r route) match(raw []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, s := range r.segs {
		if s.kind == greedy {
			if i >= len(raw) {
				return nil, false
			}
			rest := make([]string, 0, len(raw)-i)
			for _, x := range raw[i:] {
				u, err := url.PathUnescape(x)
				if err != nil || u == "" {
					return nil, false
				}
				rest = append(rest, u)
			}
			params[s.text] = strings.Join(rest, "/")
			return params, true
		}
		if i >= len(raw) {
			return nil, false
		}
		v, err := url.PathUnescape(raw[i])
		if err != nil || v == "" {
			return nil, false
		}
		switch s.kind {
		case literal:
			if v != s.text {
				return nil, false
			}
		case param:
			params[s.text] = v
		}
	}
	if len(raw) != len(r.segs) {
		return nil, false
	}
	return params, true
}

// moreSpecific orders routes the way API Gateway picks among several matches.
func moreSpecific(a, b route) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind < b.segs[i].kind
		}
	}
	if len(a.segs) != len(b.segs) {
		return len(a.segs) > len(b.segs)
	}
	if (a.Method == "ANY") != (b.Method == "ANY") {
		return b.Method == "ANY"
	}
	return a.Key() < b.Key()
}

// Router finds the route for a request.
type Router struct {
	routes []route // most specific first
}

// NewRouter compiles the template's routes.
func NewRouter(routes []samtpl.Route) *Router {
	rt := &Router{}
	for _, r := range routes {
		rt.routes = append(rt.routes, compileRoute(r))
	}
	sort.SliceStable(rt.routes, func(i, j int) bool { return moreSpecific(rt.routes[i], rt.routes[j]) })
	return rt
}

// Match returns the most specific route for method and escaped path, with its path parameters; false when none
// (API Gateway answers 404 both for an unknown path and for an undeclared method).
func (rt *Router) Match(method, escapedPath string) (samtpl.Route, map[string]string, bool) {
	raw := splitPath(escapedPath)
	for _, r := range rt.routes {
		if r.Method != "ANY" && r.Method != method {
			continue
		}
		if params, ok := r.match(raw); ok {
			return r.Route, params, true
		}
	}
	return samtpl.Route{}, nil, false
}
