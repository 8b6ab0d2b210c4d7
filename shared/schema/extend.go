package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// EnvExtension names the environment variable (template parameter SchemaExtension) holding an operator's schema
// document: {"measurements": [{"name": …, "tags": […], "fields": [{"name": …, "type": …}]}]}; a tag is its name or
// {"name": …, "pattern": …, "maxLength": …} (see Tag).
const EnvExtension = "SCHEMA_EXTENSION"

// Load is the deployment's schema: Default extended by the operator's document (empty: Default alone). A
// measurement of the document that Default already has gains its tags and fields; a new one is added. A field may
// not change the type Default gives it (InfluxDB keeps one type per field, and the dashboard reads these). The
// result is validated.
func Load(doc string) (*Schema, error) {
	s := Default()
	if doc == "" {
		return s, nil
	}
	var ext Schema
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ext); err != nil {
		return nil, fmt.Errorf("schema: %s is not a schema document: %w", EnvExtension, err)
	}
	for _, m := range ext.Measurements {
		d, ok := s.Measurement(m.Name)
		if !ok {
			s.Measurements = append(s.Measurements, m)
			continue
		}
		d.Tags = append(d.Tags, m.Tags...)
		for _, f := range m.Fields {
			if t, ok := s.Field(m.Name, f.Name); ok {
				if t != f.Type {
					return nil, fmt.Errorf("schema: %s: field %q of %q is %s, not %s", EnvExtension, f.Name, m.Name, t, f.Type)
				}
				continue
			}
			d.Fields = append(d.Fields, f)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}
