package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// loopbackHosts are the Host names the local API answers without -allow-host: a page on another site that makes
// the browser reach 127.0.0.1 through its own DNS name (DNS rebinding) sends that name as Host and is refused.
var loopbackHosts = map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true}

// hostAllowed reports whether the request's Host (port ignored) is a loopback name or one of extra.
func hostAllowed(host string, extra map[string]bool) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return loopbackHosts[host] || extra[host]
}

// maxClockSkew is how far X-Amz-Date may be from now, as in AWS.
const maxClockSkew = 5 * time.Minute

// verifySigV4 checks that r (with its body already read) carries a SigV4 signature made with creds for the lambda
// service: the signature is recomputed with the SDK's own signer over the headers the caller signed, and compared
// in constant time. The region is taken from the caller's credential scope (any region signs for the local API).
func verifySigV4(ctx context.Context, r *http.Request, body []byte, creds aws.Credentials, now time.Time) error {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return errors.New("no credentials configured for the Invoke API")
	}
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return errors.New("not signed with AWS4-HMAC-SHA256")
	}
	fields := authFields(rest)
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[3] != "lambda" {
		return errors.New("malformed credential scope")
	}
	if !hmac.Equal([]byte(scope[0]), []byte(creds.AccessKeyID)) {
		return errors.New("unknown access key")
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signedAt.Format("20060102") != scope[1] {
		return errors.New("missing or inconsistent X-Amz-Date")
	}
	if d := now.Sub(signedAt); d > maxClockSkew || d < -maxClockSkew {
		return errors.New("signature expired or from the future")
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") {
		return errors.New("host is not signed")
	}
	// The request as the caller signed it: only its signed headers, its host, its length if signed.
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return err
	}
	req.Host = r.Host
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if v := r.Header.Get("X-Amz-Content-Sha256"); v != "" && v != hash && v != "UNSIGNED-PAYLOAD" {
		return errors.New("payload hash mismatch")
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "lambda", scope[2], signedAt); err != nil {
		return err
	}
	want := authFields(strings.TrimPrefix(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "))
	if want["SignedHeaders"] != fields["SignedHeaders"] || !hmac.Equal([]byte(want["Signature"]), []byte(fields["Signature"])) {
		return errors.New("signature mismatch")
	}
	return nil
}

// authFields splits "Credential=…, SignedHeaders=…, Signature=…".
func authFields(s string) map[string]string {
	fields := map[string]string{}
	for _, f := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok {
			fields[k] = v
		}
	}
	return fields
}
