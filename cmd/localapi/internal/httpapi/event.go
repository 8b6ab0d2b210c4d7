package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

// APIID is the local HTTP API's id in events.
const APIID = "local"

// newRequestID returns an id shaped loosely like API Gateway's.
func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// textual reports whether a body of this content type travels as text (everything else is base64-encoded, as
// API Gateway does for binary media).
func textual(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/x-www-form-urlencoded",
		mt == "application/graphql", mt == "application/yaml":
		return true
	}
	return false
}

// BuildHTTPEvent turns a request (body already read) into an API Gateway payload-2.0 event.
func BuildHTTPEvent(r *http.Request, body []byte, rt samtpl.Route, params map[string]string, requestID string, now time.Time) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	var cookies []string
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	sourceIP, port, _ := net.SplitHostPort(r.RemoteAddr)
	headers["x-forwarded-for"] = sourceIP
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	headers["x-forwarded-port"] = port
	headers["x-forwarded-proto"] = "http"
	if len(body) > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}

	var query map[string]string
	if r.URL.RawQuery != "" {
		q, _ := url.ParseQuery(r.URL.RawQuery)
		if len(q) > 0 {
			query = map[string]string{}
			for k, vs := range q {
				query[k] = strings.Join(vs, ",")
			}
		}
	}
	if len(params) == 0 {
		params = nil
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              rt.Key(),
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     rt.Key(),
			AccountID:    samtpl.AccountID,
			Stage:        "$default",
			RequestID:    requestID,
			APIID:        APIID,
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		// A body with a Content-Encoding (gzip line protocol labelled text/plain, as InfluxDB clients send it) is
		// bytes, not text, whatever its type says: it travels base64-encoded.
		encoded := r.Header.Get("Content-Encoding") != "" && !strings.EqualFold(r.Header.Get("Content-Encoding"), "identity")
		if !encoded && textual(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// BuildAuthorizerEvent is the payload-2.0 authorizer request for the same HTTP request.
func BuildAuthorizerEvent(ev events.APIGatewayV2HTTPRequest, identity []string) events.APIGatewayV2CustomAuthorizerV2Request {
	return events.APIGatewayV2CustomAuthorizerV2Request{
		Version:  "2.0",
		Type:     "REQUEST",
		RouteArn: fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/$default/%s%s", samtpl.Region, samtpl.AccountID, APIID, ev.RequestContext.HTTP.Method, ev.RawPath),
		// API Gateway sends the identity source values; with none configured the authorizer reads the request.
		IdentitySource:        identity,
		RouteKey:              ev.RouteKey,
		RawPath:               ev.RawPath,
		RawQueryString:        ev.RawQueryString,
		Cookies:               ev.Cookies,
		Headers:               ev.Headers,
		QueryStringParameters: ev.QueryStringParameters,
		RequestContext:        ev.RequestContext,
		PathParameters:        ev.PathParameters,
	}
}

// identityValues resolves "$request.header.X" / "$request.querystring.x" sources; ok is false when one is missing
// (API Gateway then answers 401 without calling the authorizer).
func identityValues(sources []string, ev events.APIGatewayV2HTTPRequest) ([]string, bool) {
	var out []string
	for _, s := range sources {
		var v string
		switch {
		case strings.HasPrefix(s, "$request.header."):
			v = ev.Headers[strings.ToLower(strings.TrimPrefix(s, "$request.header."))]
		case strings.HasPrefix(s, "$request.querystring."):
			v = ev.QueryStringParameters[strings.TrimPrefix(s, "$request.querystring.")]
		}
		if v == "" {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// authorizerDecision reads an authorizer's reply: simple responses, or an IAM policy when simple responses are off.
func authorizerDecision(payload []byte, simple bool) (allowed bool, ctx map[string]any, err error) {
	if simple {
		var r events.APIGatewayV2CustomAuthorizerSimpleResponse
		if err := json.Unmarshal(payload, &r); err != nil {
			return false, nil, fmt.Errorf("authorizer reply is not a simple response: %w", err)
		}
		return r.IsAuthorized, r.Context, nil
	}
	// Only the effects matter locally; Action and Resource may be a string or a list, so they are not decoded.
	var r struct {
		PolicyDocument struct {
			Statement []struct {
				Effect string `json:"Effect"`
			} `json:"Statement"`
		} `json:"policyDocument"`
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return false, nil, fmt.Errorf("authorizer reply is not an IAM policy response: %w", err)
	}
	allow := false
	for _, st := range r.PolicyDocument.Statement {
		switch strings.ToLower(st.Effect) {
		case "deny":
			return false, nil, nil
		case "allow":
			allow = true
		}
	}
	return allow, r.Context, nil
}

// httpResponse is a function's reply in API Gateway terms.
type httpResponse struct {
	Status  int
	Header  http.Header
	Body    []byte
	Invalid bool // the reply could not be mapped: API Gateway answers 500
}

// MapResponse converts a payload-2.0 function reply into an HTTP response: a JSON object with statusCode is a
// structured response; any other valid JSON is answered as 200 application/json with the reply as body.
func MapResponse(payload []byte) httpResponse {
	var probe map[string]json.RawMessage
	if json.Unmarshal(payload, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			var r events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(payload, &r); err != nil || r.StatusCode < 100 || r.StatusCode > 599 {
				return httpResponse{Invalid: true}
			}
			out := httpResponse{Status: r.StatusCode, Header: http.Header{}}
			for k, vs := range r.MultiValueHeaders {
				for _, v := range vs {
					out.Header.Add(k, v)
				}
			}
			for k, v := range r.Headers {
				out.Header.Set(k, v)
			}
			for _, c := range r.Cookies {
				out.Header.Add("Set-Cookie", c)
			}
			if r.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(r.Body)
				if err != nil {
					return httpResponse{Invalid: true}
				}
				out.Body = b
			} else {
				out.Body = []byte(r.Body)
			}
			return out
		}
	}
	if !json.Valid(payload) {
		return httpResponse{Invalid: true}
	}
	return httpResponse{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: payload}
}

type (
	eventsRequest         = events.APIGatewayV2HTTPRequest
	authorizerDescription = events.APIGatewayV2HTTPRequestContextAuthorizerDescription
)
