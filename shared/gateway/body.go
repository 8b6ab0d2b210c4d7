package gateway

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Body limits. API Gateway hands a function every body that is not text/* base64-encoded, and Lambda refuses an
// event over 6 MB: 4 MiB as sent is 5.6 MB in base64, leaving room for the headers.
const (
	MaxBody        = 4 << 20
	MaxDecodedBody = 32 << 20
)

// readBody reads the request body as sent (at most maxBody bytes) and decompresses a gzip one (at most maxDecoded
// bytes: a zip bomb stops there). The Lambda adapter has already undone API Gateway's base64, so gzip bytes arrive
// the same whether API Gateway passed them as base64 or as text.
func readBody(r *http.Request, maxBody, maxDecoded int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, api.Wrap(api.Invalid, err, "reading the request body failed")
	}
	if int64(len(raw)) > maxBody {
		return nil, api.Errorf(api.TooLarge, "request body is larger than %d bytes", maxBody)
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if int64(len(raw)) > maxDecoded {
			return nil, api.Errorf(api.TooLarge, "request body is larger than %d bytes", maxDecoded)
		}
		return raw, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, api.Errorf(api.Invalid, "request body is not valid gzip")
		}
		out, err := readCapped(zr, min(int64(len(raw))*12, maxDecoded)+1, maxDecoded)
		switch {
		case int64(len(out)) > maxDecoded:
			return nil, api.Errorf(api.TooLarge, "decompressed request body is larger than %d bytes", maxDecoded)
		case err != nil:
			return nil, api.Errorf(api.Invalid, "request body is not valid gzip")
		}
		return out, nil
	default:
		return nil, api.Errorf(api.Invalid, "Content-Encoding %s is not supported (gzip or identity)", clip([]byte(enc), 32))
	}
}

// readCapped reads r to its end into a buffer of initial capacity size, stopping once it holds more than limit bytes.
func readCapped(r io.Reader, size, limit int64) ([]byte, error) {
	buf := make([]byte, 0, size)
	for int64(len(buf)) <= limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
