package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

// Tag values are part of the schema: each distinct value makes a new series in InfluxDB (its index grows with them
// until memory runs out), so a tag accepts only values matching its pattern, at most MaxLength bytes long.
const (
	// SensorValuePattern is what the built-in sensor tags accept: iot-center-v2's virtual sensor names
	// (virtual_TemperatureSensor) and real parts' names (BME280, SCD30, NEO-6M, sht3x.0).
	SensorValuePattern = `[A-Za-z0-9][A-Za-z0-9_.-]*`
	// SensorValueMaxLength bounds a built-in sensor tag's value (the longest virtual name has 25 bytes).
	SensorValueMaxLength = 32
	// DefaultTagPattern and DefaultTagMaxLength apply to a SchemaExtension tag that declares neither.
	DefaultTagPattern   = `[A-Za-z0-9][A-Za-z0-9_.-]*`
	DefaultTagMaxLength = 64
	// MaxTagLength bounds any tag value a schema may allow; maxPattern bounds the pattern's text.
	MaxTagLength = 256
	maxPattern   = 256
)

// Tag is one tag of a measurement: its key, and the values it accepts (Pattern must match the whole value; at most
// MaxLength bytes). In a schema document a tag is either its name alone ("Room": the defaults) or an object
// {"name": "Floor", "pattern": "[0-9]{1,2}", "maxLength": 2}.
type Tag struct {
	Name      string `json:"name"`
	Pattern   string `json:"pattern,omitempty"`
	MaxLength int    `json:"maxLength,omitempty"`
}

// UnmarshalJSON reads a tag given as its name or as an object (unknown members refused).
func (t *Tag) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*t = Tag{}
		return json.Unmarshal(b, &t.Name)
	}
	type plain Tag // without this method
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("a tag is a name or {\"name\", \"pattern\", \"maxLength\"}: %w", err)
	}
	*t = Tag(p)
	return nil
}

// TagRule is a tag's value check, compiled.
type TagRule struct {
	re     *regexp.Regexp
	maxLen int
}

// Rule compiles the tag's value check (defaults applied); an invalid pattern or length is an error.
func (t Tag) Rule() (TagRule, error) {
	p, n := t.Pattern, t.MaxLength
	if p == "" {
		p = DefaultTagPattern
	}
	if n == 0 {
		n = DefaultTagMaxLength
	}
	if n < 1 || n > MaxTagLength {
		return TagRule{}, fmt.Errorf("tag %q: maxLength %d is not in [1, %d]", t.Name, n, MaxTagLength)
	}
	if len(p) > maxPattern {
		return TagRule{}, fmt.Errorf("tag %q: pattern longer than %d bytes", t.Name, maxPattern)
	}
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return TagRule{}, fmt.Errorf("tag %q: invalid pattern: %w", t.Name, err)
	}
	if re.MatchString("") {
		return TagRule{}, fmt.Errorf("tag %q: pattern accepts the empty value (InfluxDB drops empty tags)", t.Name)
	}
	return TagRule{re: re, maxLen: n}, nil
}

// Check reports why value is not accepted ("" when it is).
func (r TagRule) Check(value []byte) string {
	if len(value) > r.maxLen {
		return fmt.Sprintf("is longer than %d bytes", r.maxLen)
	}
	if !r.re.Match(value) {
		return "does not match " + r.re.String()
	}
	return ""
}

// MaxLen is the longest value the rule accepts.
func (r TagRule) MaxLen() int { return r.maxLen }
