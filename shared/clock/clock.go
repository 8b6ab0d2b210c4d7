// Package clock is the time source of services and workers: left nil it is the wall clock, and tests set their
// own.
package clock

import "time"

// Func returns the current time; the zero value is time.Now.
type Func func() time.Time

// Now is f's time, or the wall clock's when f is nil.
func (f Func) Now() time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}
