// Package schema is the one definition of what devices write to InfluxDB: measurement, tag and field names and
// each field's type. Every package that renders line protocol or Flux, or checks a write, reads it from here.
//
// The built-in schema (Default) is the seed's: measurement "environment" with the virtual sensors' tags, the
// clientId tag and seven fields. A deployment may describe more measurements: Schema has JSON tags so an operator's
// document (e.g. in an environment variable) decodes into the same type; Validate checks it.
package schema

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Names of the built-in schema.
const (
	// Measurement is the measurement every device writes.
	Measurement = "environment"
	// DownsampledSuffix names the hourly aggregates of a measurement (see Downsampled).
	DownsampledSuffix = "_1h"
	// DownsampledMeasurement is Downsampled(Measurement).
	DownsampledMeasurement = Measurement + DownsampledSuffix
	// TagClientID is the tag holding the device id.
	TagClientID = "clientId"
	// TagAgg is the downsampled points' aggregate tag (one of Aggregates).
	TagAgg = "agg"
	// TagGenerated marks the points write-missing generated (value GeneratedValue) and their hourly aggregates. No
	// schema may declare it, so the write gateway refuses it from devices: a point without it is a device's write.
	TagGenerated   = "generated"
	GeneratedValue = "true"
	// DigestMeasurement is the write gateway's internal presence digest (package presence) in the data bucket. No
	// schema may declare it, so no device writes it and no query of schema measurements reads it.
	DigestMeasurement = "presence"
	// FleetMeasurement holds the fleet-health run's counts (one point a run, no tags) in the data bucket, read by
	// the overview. Reserved like the digest: no device may write points the overview would count.
	FleetMeasurement = "fleet"
)

// Flux predicates (on a row r) that keep the devices' own points, or only the generated ones. Both are pushed down
// to the storage engine (`not exists` is; `== ""` is not, and is false for a missing tag in Flux).
const (
	RealFilter      = `not exists r.` + TagGenerated
	GeneratedFilter = `r.` + TagGenerated + ` == "` + GeneratedValue + `"`
)

// Field names of the built-in measurement.
const (
	Temperature = "Temperature"
	Humidity    = "Humidity"
	Pressure    = "Pressure"
	CO2         = "CO2"
	TVOC        = "TVOC"
	Lat         = "Lat"
	Lon         = "Lon"
)

// Aggregates are the values of TagAgg in the downsampled measurement, in the order the task writes them.
var Aggregates = []string{"count", "mean", "min", "max", "last"}

// SensorTags are the seed's virtual sensor tags (key, value), in line-protocol (sorted) order; TagClientID sorts
// after them.
var SensorTags = [][2]string{
	{"CO2Sensor", "virtual_CO2Sensor"},
	{"GPSSensor", "virtual_GPSSensor"},
	{"HumiditySensor", "virtual_HumiditySensor"},
	{"PressureSensor", "virtual_PressureSensor"},
	{"TVOCSensor", "virtual_TVOCSensor"},
	{"TemperatureSensor", "virtual_TemperatureSensor"},
}

// PresenceFlux is how every query that asks whether points exist in a window begins (generated points included:
// RealPresenceFlux is the devices' own writes): the Temperature points (every
// point of the built-in measurement carries one, so one field stands for the point and the storage engine's
// pushed-down count, last and aggregateWindow read one series per device and sensor set) of the extern bucket in
// [start, stop), of the devices whose TagClientID satisfies the Flux comparison devices (`== deviceId`,
// `=~ devices`, `!= ""`).
func PresenceFlux(devices string) string {
	return `from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "` + Measurement + `" and r._field == "` + Temperature + `" and r.` + TagClientID + ` ` + devices + `)`
}

// RealPresenceFlux is PresenceFlux without the generated points: what the devices wrote themselves.
func RealPresenceFlux(devices string) string {
	return PresenceFlux(devices + ` and ` + RealFilter)
}

// Downsampled names the measurement holding m's hourly aggregates. The downsampled fields are all Float whatever
// the source field's type (count is an integer, and InfluxDB refuses a field whose type differs between series).
func Downsampled(m string) string { return m + DownsampledSuffix }

// FieldType is an InfluxDB field type, spelled as in line protocol documentation.
type FieldType string

// The InfluxDB field types.
const (
	Float    FieldType = "float"
	Integer  FieldType = "integer"
	Unsigned FieldType = "unsigned"
	String   FieldType = "string"
	Boolean  FieldType = "boolean"
)

// Valid reports whether t is one of the InfluxDB field types.
func (t FieldType) Valid() bool {
	switch t {
	case Float, Integer, Unsigned, String, Boolean:
		return true
	}
	return false
}

// Numeric reports whether the field can be aggregated (mean, min, max).
func (t FieldType) Numeric() bool { return t == Float || t == Integer || t == Unsigned }

// Field is one field of a measurement.
type Field struct {
	Name string    `json:"name"`
	Type FieldType `json:"type"`
}

// MeasurementDef is one measurement: its name, the tags a point may carry besides TagClientID, and its fields in a
// stable order.
type MeasurementDef struct {
	Name   string  `json:"name"`
	Tags   []Tag   `json:"tags,omitempty"`
	Fields []Field `json:"fields"`
}

// TagNames returns the names of the measurement's tags in their declared order.
func (m *MeasurementDef) TagNames() []string {
	out := make([]string, len(m.Tags))
	for i, t := range m.Tags {
		out[i] = t.Name
	}
	return out
}

// Schema is the set of measurements devices may write.
type Schema struct {
	Measurements []MeasurementDef `json:"measurements"`
}

// Default returns the built-in schema (a fresh copy: callers may extend it).
func Default() *Schema {
	tags := make([]Tag, len(SensorTags))
	for i, t := range SensorTags {
		tags[i] = Tag{Name: t[0], Pattern: SensorValuePattern, MaxLength: SensorValueMaxLength}
	}
	return &Schema{Measurements: []MeasurementDef{{
		Name: Measurement,
		Tags: tags,
		Fields: []Field{
			{Temperature, Float}, {Humidity, Float}, {Pressure, Float},
			{CO2, Integer}, {TVOC, Integer},
			{Lat, Float}, {Lon, Float},
		},
	}}}
}

// Measurement returns the definition of the measurement called name.
func (s *Schema) Measurement(name string) (*MeasurementDef, bool) {
	for i := range s.Measurements {
		if s.Measurements[i].Name == name {
			return &s.Measurements[i], true
		}
	}
	return nil, false
}

// Field returns the type of field name of measurement m; false when either is not in the schema.
func (s *Schema) Field(m, name string) (FieldType, bool) {
	d, ok := s.Measurement(m)
	if !ok {
		return "", false
	}
	for _, f := range d.Fields {
		if f.Name == name {
			return f.Type, true
		}
	}
	return "", false
}

// Fields returns the fields of measurement m in their declared order (nil for an unknown measurement).
func (s *Schema) Fields(m string) []Field {
	d, ok := s.Measurement(m)
	if !ok {
		return nil
	}
	return append([]Field(nil), d.Fields...)
}

// FieldNames returns the names of Fields(m).
func (s *Schema) FieldNames(m string) []string {
	fs := s.Fields(m)
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// nameRE is what a measurement, tag or field name may be: it is rendered into line protocol and Flux text, so it
// stays within characters that need no escaping in either.
var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// Validate checks names (nameRE, unique, not reserved), field types, and that no measurement collides with another's
// downsampled name. An operator-supplied schema is validated once at cold start.
func (s *Schema) Validate() error {
	if len(s.Measurements) == 0 {
		return errors.New("schema: no measurement")
	}
	names := map[string]bool{}
	for _, m := range s.Measurements {
		if !nameRE.MatchString(m.Name) {
			return fmt.Errorf("schema: invalid measurement name %q", m.Name)
		}
		if names[m.Name] {
			return fmt.Errorf("schema: measurement %q twice", m.Name)
		}
		if reserved := []string{DigestMeasurement, FleetMeasurement}; slices.Contains(reserved, m.Name) ||
			slices.Contains(reserved, strings.TrimSuffix(m.Name, DownsampledSuffix)) {
			return fmt.Errorf("schema: measurement name %q is reserved", m.Name)
		}
		names[m.Name] = true
		if len(m.Fields) == 0 {
			return fmt.Errorf("schema: measurement %q has no field", m.Name)
		}
		keys := map[string]bool{TagClientID: true, TagAgg: true, TagGenerated: true}
		for _, t := range m.Tags {
			if !nameRE.MatchString(t.Name) || keys[t.Name] {
				return fmt.Errorf("schema: measurement %q: invalid or repeated tag %q", m.Name, t.Name)
			}
			keys[t.Name] = true
			if _, err := t.Rule(); err != nil {
				return fmt.Errorf("schema: measurement %q: %w", m.Name, err)
			}
		}
		fields := map[string]bool{}
		for _, f := range m.Fields {
			if !nameRE.MatchString(f.Name) || fields[f.Name] {
				return fmt.Errorf("schema: measurement %q: invalid or repeated field %q", m.Name, f.Name)
			}
			if !f.Type.Valid() {
				return fmt.Errorf("schema: measurement %q: field %q has unknown type %q", m.Name, f.Name, f.Type)
			}
			fields[f.Name] = true
		}
	}
	for _, m := range s.Measurements {
		if names[Downsampled(m.Name)] {
			return fmt.Errorf("schema: measurement %q is the downsampled name of %q", Downsampled(m.Name), m.Name)
		}
	}
	return nil
}
