package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/config"
)

// The typed readers keep a value only within its bounds: unset gives the default silently; unparsable or out of
// range gives the default and a problem naming the variable and the bounds.
func TestEnvTypedReaders(t *testing.T) {
	vars := map[string]string{"I": " 7 ", "I_HIGH": "11", "I_BAD": "x", "F": "2.5", "F_LOW": "-1", "D": "90s",
		"D_BAD": "5", "D_HIGH": "2h"}
	e := &config.Env{Get: env(vars)}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"I", e.Int("I", 1, 0, 10), 7},
		{"I unset", e.Int("I_UNSET", 1, 0, 10), 1},
		{"I_HIGH", e.Int("I_HIGH", 1, 0, 10), 1},
		{"I_BAD", e.Int("I_BAD", 1, 0, 10), 1},
		{"F", e.Float("F", 1, 0, 10), 2.5},
		{"F_LOW", e.Float("F_LOW", 1, 0, 10), 1.0},
		{"D", e.Duration("D", time.Second, time.Second, time.Hour), 90 * time.Second},
		{"D_BAD", e.Duration("D_BAD", time.Second, time.Second, time.Hour), time.Second},
		{"D_HIGH", e.Duration("D_HIGH", time.Second, time.Second, time.Hour), time.Second},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	err := e.Err()
	if err == nil {
		t.Fatal("Err() = nil, want the five problems")
	}
	for _, want := range []string{`I_HIGH must be an integer in [0, 10], got "11"`, `I_BAD must be an integer in [0, 10]`,
		`F_LOW must be a number in [0, 10], got "-1"`, `D_BAD must be a duration in [1s, 1h0m0s], got "5"`,
		`D_HIGH must be a duration in [1s, 1h0m0s]`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %q, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "I_UNSET") || strings.Contains(err.Error(), `"I"`) {
		t.Errorf("Err() = %q names a variable that was fine", err)
	}
}
