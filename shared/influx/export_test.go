package influx

import "time"

// SetClock replaces the clock the client's token re-reads are bounded by.
func SetClock(c *Client, now func() time.Time) { c.auth.now = now }
