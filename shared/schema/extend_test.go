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
	if got := env.Tags[len(env.Tags)-1].Name; got != "Room" || len(env.Tags) != len(SensorTags)+1 {
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
		{"reserved name", `{"measurements":[{"name":"presence","fields":[{"name":"entries","type":"string"}]}]}`, "reserved"},
		{"repeated tag", `{"measurements":[{"name":"environment","tags":["GPSSensor"],"fields":[]}]}`, "repeated tag"},
	}
	for _, tc := range tests {
		if _, err := Load(tc.doc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Load = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestTagValueRules(t *testing.T) {
	s, err := Load(`{"measurements":[{"name":"power","tags":["Room",{"name":"Floor","pattern":"[0-9]{1,2}","maxLength":2}],
	  "fields":[{"name":"Watts","type":"float"}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	rule := func(m, tag string) TagRule {
		t.Helper()
		d, ok := s.Measurement(m)
		if !ok {
			t.Fatalf("no measurement %s", m)
		}
		for _, tg := range d.Tags {
			if tg.Name == tag {
				r, err := tg.Rule()
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
		}
		t.Fatalf("no tag %s in %s", tag, m)
		return TagRule{}
	}
	tests := []struct {
		m, tag, value string
		ok            bool
	}{
		{Measurement, "TemperatureSensor", "virtual_TemperatureSensor", true},
		{Measurement, "TemperatureSensor", "BME280", true},
		{Measurement, "GPSSensor", "NEO-6M", true},
		{Measurement, "TemperatureSensor", strings.Repeat("a", SensorValueMaxLength), true},
		{Measurement, "TemperatureSensor", strings.Repeat("a", SensorValueMaxLength+1), false},
		{Measurement, "TemperatureSensor", "BME 280", false},
		{Measurement, "TemperatureSensor", "_hidden", false},
		{Measurement, "TemperatureSensor", "a,b=c", false},
		{Measurement, "TemperatureSensor", "température", false},
		{Measurement, "TemperatureSensor", "", false},
		{"power", "Room", "kitchen-2", true},
		{"power", "Room", strings.Repeat("r", DefaultTagMaxLength+1), false},
		{"power", "Floor", "12", true},
		{"power", "Floor", "123", false},
		{"power", "Floor", "1a", false},
	}
	for _, tc := range tests {
		why := rule(tc.m, tc.tag).Check([]byte(tc.value))
		if (why == "") != tc.ok {
			t.Errorf("%s.%s = %q: refusal %q, want accepted %v", tc.m, tc.tag, tc.value, why, tc.ok)
		}
	}
}

func TestTagRulesRejected(t *testing.T) {
	tests := []struct{ name, tag, want string }{
		{"bad pattern", `{"name":"Room","pattern":"[a-"}`, "invalid pattern"},
		{"accepts empty", `{"name":"Room","pattern":"[a-z]*"}`, "empty value"},
		{"too long", `{"name":"Room","maxLength":257}`, "maxLength 257"},
		{"negative length", `{"name":"Room","maxLength":-1}`, "maxLength -1"},
		{"unknown member", `{"name":"Room","values":["a"]}`, "not a schema document"},
		{"long pattern", `{"name":"Room","pattern":"` + strings.Repeat("a", 257) + `"}`, "pattern longer"},
	}
	for _, tc := range tests {
		doc := `{"measurements":[{"name":"power","tags":[` + tc.tag + `],"fields":[{"name":"W","type":"float"}]}]}`
		if _, err := Load(doc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Load = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
