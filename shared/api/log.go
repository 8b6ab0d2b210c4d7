package api

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

type loggerKey struct{}

// base is the process logger: Lambda's JSON handler adds the request id from the invocation context.
var base = lambdacontext.NewLogger()

// SetBaseLogger replaces the process logger (tests use it to capture log lines).
func SetBaseLogger(l *slog.Logger) { base = l }

// BaseLogger returns the process logger.
func BaseLogger() *slog.Logger { return base }

// Logger returns the request's logger (with request and device ids) or the process logger.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return base
}

// WithLogger stores l in ctx.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// WithDevice adds the device id to the request's logger.
func WithDevice(r *http.Request, deviceID string) *http.Request {
	ctx := r.Context()
	return r.WithContext(WithLogger(ctx, Logger(ctx).With(slog.String("deviceId", deviceID))))
}

// Handler wraps an http.Handler with what every route wants: a request-scoped logger carrying the API Gateway
// request id, the authorizer's decision (CallerOf) with its refusal flags answered here, and a recover that turns a panic into a logged 500 instead of a crashed invocation.
func Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		l := base
		if gw, ok := core.GetAPIGatewayV2ContextFromContext(ctx); ok && gw.RequestID != "" {
			l = l.With(slog.String("apiRequestId", gw.RequestID))
		}
		r = withCaller(r.WithContext(WithLogger(ctx, l)))
		defer func() {
			if v := recover(); v != nil {
				l.ErrorContext(ctx, "panic in handler", slog.Any("panic", v))
				WriteError(w, r, Errorf(Internal, "panic"))
			}
		}()
		if err := refusal(CallerOf(r.Context())); err != nil {
			// the authorizer let the request through only to be refused here, with a JSON answer
			WriteError(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Exit logs a cold-start failure (never with secrets: callers pass errors built without them) and exits, which
// Lambda reports as an init error.
func Exit(msg string, err error) {
	base.Error(msg, slog.String("error", err.Error()))
	os.Exit(1)
}
