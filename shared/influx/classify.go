package influx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Classify is the one mapping from a failed InfluxDB call to the caller's error code:
//   - an *api.Error with a code other than Internal keeps its code (it was classified already);
//   - the caller's deadline (or a cancelled call) is Timeout, and so is InfluxDB's or a proxy's 504;
//   - 429, 502 and 503 (overloaded, restarting, a proxy without a backend) are Unavailable: worth a retry later;
//   - no answer at all (connection refused or reset, EOF mid-answer, any other network error) is Unavailable;
//   - 404 (or ErrNotFound) is NotFound: callers that find a missing bucket a deployment fault say so themselves;
//   - 401 and 403 are Internal: the function's own token was refused, which the caller can neither cause nor fix
//     (the cause is logged, the answer says "internal error");
//   - anything else is Internal.
//
// It returns "" for a nil error.
func Classify(err error) api.Code {
	if err == nil {
		return ""
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code != api.Internal {
		return ae.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return api.Timeout
	}
	switch StatusOf(err) {
	case 0:
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return api.Unavailable
	case http.StatusGatewayTimeout:
		return api.Timeout
	case http.StatusNotFound:
		return api.NotFound
	default:
		return api.Internal
	}
	if errors.Is(err, ErrNotFound) {
		return api.NotFound
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return api.Timeout
	}
	if ne != nil || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return api.Unavailable
	}
	return api.Internal
}

// Fail is the one wrapper of a failed call for the caller: nil stays nil, an *api.Error other than Internal passes
// unchanged, the caller's passed deadline is Timeout, anything else gets Classify's code with doing as message.
func Fail(ctx context.Context, err error, doing string) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code != api.Internal {
		return err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return api.Wrap(api.Timeout, err, "%s timed out", doing)
	}
	return api.Wrap(Classify(err), err, "%s", doing)
}
