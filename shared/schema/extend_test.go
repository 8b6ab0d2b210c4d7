package schema

import (
	"strings"
	"testing"
)

func TestLoadExtension(t *testing.T) {
	s, err := Load(`{"measurements":[
	  {"name":"environment","tags":["Room"],"fields":[{"name":"Noise","type":"float"},{"name":"CO2","type":"integer"}]},
	  {"name":"power","fields":[{"name":"Watts","type":"float"},{"name":"On","type":"boolean"}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		m, f string
		want FieldType
	}{
		{Measurement, Temperature, Float}, {Measurement, CO2, Integer}, {Measurement, "Noise", Float},
		{"power", "Watts", Float}, {"power", "On", Boolean},
	}
	for _, tc := range tests {
		if got, ok := s.Field(tc.m, tc.f); !ok || got != tc.want {
			t.Errorf("Field(%s, %s) = %q, %v; want %q", tc.m, tc.f, got, ok, tc.want)
		}
	}
	env, _ := s.Measurement(Measurement)
	if got := env.Tags[len(env.Tags)-1]; got != "Room" || len(env.Tags) != len(SensorTags)+1 {
		t.Errorf("environment tags = %v, want the sensor tags and Room", env.Tags)
	}
	if d, _ := Load(""); len(d.Measurements) != 1 || len(d.Fields(Measurement)) != 7 {
		t.Errorf("Load(\"\") = %+v, want Default()", d)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not JSON", `{`, "not a schema document"},
		{"unknown member", `{"measurement":[]}`, "not a schema document"},
		{"type change", `{"measurements":[{"name":"environment","fields":[{"name":"CO2","type":"float"}]}]}`, "is integer, not float"},
		{"bad type", `{"measurements":[{"name":"power","fields":[{"name":"W","type":"double"}]}]}`, "unknown type"},
		{"bad name", `{"measurements":[{"name":"po wer","fields":[{"name":"W","type":"float"}]}]}`, "invalid measurement"},
		{"downsampled name", `{"measurements":[{"name":"environment_1h","fields":[{"name":"W","type":"float"}]}]}`, "downsampled"},
		{"repeated tag", `{"measurements":[{"name":"environment","tags":["GPSSensor"],"fields":[]}]}`, "repeated tag"},
	}
	for _, tc := range tests {
		if _, err := Load(tc.doc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Load = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
