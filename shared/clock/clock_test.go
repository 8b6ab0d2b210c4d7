package clock

import (
	"testing"
	"time"
)

func TestNow(t *testing.T) {
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := Func(func() time.Time { return fixed }).Now(); !got.Equal(fixed) {
		t.Errorf("set clock: got %v, want %v", got, fixed)
	}
	before := time.Now()
	got := Func(nil).Now()
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("nil clock: got %v, want the wall clock (%v or later)", got, before)
	}
}
