package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultFieldLookup(t *testing.T) {
	s := Default()
	tests := []struct {
		m, name string
		want    FieldType
		ok      bool
	}{
		{Measurement, Temperature, Float, true},
		{Measurement, Humidity, Float, true},
		{Measurement, Pressure, Float, true},
		{Measurement, Lat, Float, true},
		{Measurement, Lon, Float, true},
		{Measurement, CO2, Integer, true},
		{Measurement, TVOC, Integer, true},
		{Measurement, "temperature", "", false},
		{Measurement, TagClientID, "", false},
		{DownsampledMeasurement, Temperature, "", false},
		{"other", Temperature, "", false},
	}
	for _, tt := range tests {
		got, ok := s.Field(tt.m, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Field(%q, %q) = %q, %v; want %q, %v", tt.m, tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestFieldsStableOrder(t *testing.T) {
	want := []string{Temperature, Humidity, Pressure, CO2, TVOC, Lat, Lon}
	for i := 0; i < 3; i++ {
		if got := Default().FieldNames(Measurement); !reflect.DeepEqual(got, want) {
			t.Fatalf("FieldNames = %v, want %v", got, want)
		}
	}
	// a caller's change to the returned slice does not reach the schema
	s := Default()
	fs := s.Fields(Measurement)
	fs[0].Name = "x"
	if got := s.FieldNames(Measurement)[0]; got != Temperature {
		t.Errorf("after modifying Fields' result, first field = %q, want %q", got, Temperature)
	}
	if got := s.Fields("nope"); got != nil {
		t.Errorf("Fields(unknown) = %v, want nil", got)
	}
}

func TestNames(t *testing.T) {
	if got, want := Downsampled(Measurement), "environment_1h"; got != want || DownsampledMeasurement != want {
		t.Errorf("Downsampled(%q) = %q, DownsampledMeasurement = %q; want %q", Measurement, got, DownsampledMeasurement, want)
	}
	for i := 1; i < len(SensorTags); i++ {
		if SensorTags[i-1][0] >= SensorTags[i][0] {
			t.Errorf("SensorTags not sorted: %q before %q", SensorTags[i-1][0], SensorTags[i][0])
		}
	}
	if last := SensorTags[len(SensorTags)-1][0]; last >= TagClientID {
		t.Errorf("sensor tag %q sorts after %q; line protocol renders clientId last", last, TagClientID)
	}
}

// TestJSONDocument decodes an operator's document into the same type and validates it.
func TestJSONDocument(t *testing.T) {
	doc := `{"measurements":[
	  {"name":"environment","tags":["TemperatureSensor"],"fields":[{"name":"Temperature","type":"float"},{"name":"CO2","type":"integer"}]},
	  {"name":"power","fields":[{"name":"Watts","type":"float"},{"name":"On","type":"boolean"}]}]}`
	var s Schema
	if err := json.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if got, ok := s.Field("power", "On"); got != Boolean || !ok {
		t.Errorf("Field(power, On) = %q, %v; want boolean, true", got, ok)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name string
		s    Schema
		want string
	}{
		{"empty", Schema{}, "no measurement"},
		{"bad name", Schema{[]MeasurementDef{{Name: "a b", Fields: []Field{{"x", Float}}}}}, "invalid measurement"},
		{"quote in name", Schema{[]MeasurementDef{{Name: `a"`, Fields: []Field{{"x", Float}}}}}, "invalid measurement"},
		{"twice", Schema{[]MeasurementDef{{Name: "a", Fields: []Field{{"x", Float}}}, {Name: "a", Fields: []Field{{"x", Float}}}}}, "twice"},
		{"no field", Schema{[]MeasurementDef{{Name: "a"}}}, "no field"},
		{"reserved tag", Schema{[]MeasurementDef{{Name: "a", Tags: []Tag{{Name: TagClientID}}, Fields: []Field{{"x", Float}}}}}, "tag"},
		{"repeated field", Schema{[]MeasurementDef{{Name: "a", Fields: []Field{{"x", Float}, {"x", Integer}}}}}, "repeated field"},
		{"bad type", Schema{[]MeasurementDef{{Name: "a", Fields: []Field{{"x", "double"}}}}}, "unknown type"},
		{"the presence digest's name", Schema{[]MeasurementDef{{Name: DigestMeasurement, Fields: []Field{{"x", Float}}}}}, "reserved"},
		{"the digest's downsampled name", Schema{[]MeasurementDef{{Name: Downsampled(DigestMeasurement), Fields: []Field{{"x", Float}}}}}, "reserved"},
		{"the fleet counts' name", Schema{[]MeasurementDef{{Name: FleetMeasurement, Fields: []Field{{"online", Integer}}}}}, "reserved"},
		{"the fleet counts' downsampled name", Schema{[]MeasurementDef{{Name: Downsampled(FleetMeasurement), Fields: []Field{{"x", Float}}}}}, "reserved"},
		{"the digest's downsampled name", Schema{[]MeasurementDef{{Name: Downsampled(DigestMeasurement), Fields: []Field{{"x", Float}}}}}, "reserved"},
		{"downsampled collision", Schema{[]MeasurementDef{{Name: "a", Fields: []Field{{"x", Float}}}, {Name: "a_1h", Fields: []Field{{"x", Float}}}}}, "downsampled"},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestFieldTypeNumeric(t *testing.T) {
	for ft, want := range map[FieldType]bool{Float: true, Integer: true, Unsigned: true, String: false, Boolean: false} {
		if got := ft.Numeric(); got != want {
			t.Errorf("%q.Numeric() = %v, want %v", ft, got, want)
		}
	}
}
