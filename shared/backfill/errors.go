package backfill

import (
	"errors"
	"net"
	"syscall"
)

// isNetErr reports a connection-level failure (InfluxDB down or restarting).
func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
