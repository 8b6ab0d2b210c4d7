package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// kindOf is the line-protocol value kind of each schema field type.
var kindOf = map[schema.FieldType]lineprotocol.ValueKind{
	schema.Float: lineprotocol.Float, schema.Integer: lineprotocol.Int, schema.Unsigned: lineprotocol.Uint,
	schema.String: lineprotocol.String, schema.Boolean: lineprotocol.Bool,
}

// measurementRules is one schema measurement prepared for checking: map lookups by string(bytes) do not allocate.
type measurementRules struct {
	name   string
	tags   map[string]*tagRule
	fields map[string]field
}

// tagRule is one tag key of a measurement: the key as bytes, made once (a kept tag key allocates nothing), and the
// values it accepts (clientId is checked against the device instead).
type tagRule struct {
	key    []byte
	client bool
	rule   schema.TagRule
	slot   int // index of the checker's last accepted value of this tag
}

type field struct {
	name string
	typ  schema.FieldType
	kind lineprotocol.ValueKind
	pos  coord // the built-in measurement's Lat or Lon: the presence digest keeps the device's last position
}

type coord uint8

const (
	noCoord coord = iota
	latCoord
	lonCoord
)

// rules is the schema as the gateway checks it.
type rules struct {
	m       map[string]*measurementRules
	slots   int // tag rules in all measurements
	maxLine int // bytes of the longest line the schema accepts (see lineBound)
}

// Bounds of a line's parts that the schema does not fix, for lineBound: a number as clients write it, a string
// field's value (counted, not enforced: a body is capped as a whole), the timestamp and line end.
const (
	numberBytes = 32
	stringBytes = 256
	endBytes    = 1 + 20 + 2
)

// lineBound is the longest line of measurement m: every tag at its longest value, escaped (each byte may take
// two), every field once, a timestamp.
func lineBound(m schema.MeasurementDef, rs []schema.TagRule) int {
	n := len(m.Name) + 1 + len(schema.TagClientID) + 1 + 64 + endBytes
	for i, t := range m.Tags {
		n += 1 + len(t.Name) + 1 + 2*rs[i].MaxLen()
	}
	for _, f := range m.Fields {
		n += 1 + len(f.Name) + 1
		switch f.Type {
		case schema.String:
			n += 2 + 2*stringBytes
		case schema.Boolean:
			n += len("false")
		default:
			n += numberBytes
		}
	}
	return n
}

func compile(s *schema.Schema) (rules, error) {
	if err := s.Validate(); err != nil {
		return rules{}, err
	}
	out := rules{m: map[string]*measurementRules{}}
	for _, m := range s.Measurements {
		mr := &measurementRules{name: m.Name, fields: map[string]field{},
			tags: map[string]*tagRule{schema.TagClientID: {key: []byte(schema.TagClientID), client: true, slot: -1}}}
		rs := make([]schema.TagRule, len(m.Tags))
		for i, t := range m.Tags {
			rule, err := t.Rule()
			if err != nil {
				return rules{}, err
			}
			rs[i] = rule
			mr.tags[t.Name] = &tagRule{key: []byte(t.Name), rule: rule, slot: out.slots}
			out.slots++
		}
		out.maxLine = max(out.maxLine, lineBound(m, rs))
		for _, f := range m.Fields {
			fd := field{name: f.Name, typ: f.Type, kind: kindOf[f.Type]}
			if m.Name == schema.Measurement && f.Type == schema.Float {
				switch f.Name {
				case schema.Lat:
					fd.pos = latCoord
				case schema.Lon:
					fd.pos = lonCoord
				}
			}
			mr.fields[f.Name] = fd
		}
		out.m[m.Name] = mr
	}
	return out, nil
}

// batch is what one request may write: the device it is authenticated as, the precision of its timestamps, and the
// window its timestamps must fall in.
type batch struct {
	device    string
	precision lineprotocol.Precision
	now       time.Time // the time of points without a timestamp
	oldest    time.Time // zero: no lower bound (infinite retention)
	newest    time.Time
}

type tag struct{ key, value []byte }

// checker re-encodes checked lines; build one per request.
type checker struct {
	rules     rules
	b         batch
	maxPoints int // more points refuse the request
	enc       lineprotocol.Encoder
	tags      []tag
	seen      []string // field names of the current line
	arena     []byte   // copies of the current line's tag values (the decoder's slices do not outlive the next call)
	device    []byte   // b.device as bytes, made once
	// lastOK is each tag's last accepted value: a device repeats its tag values on every line, so most lines
	// compare bytes instead of matching the pattern again.
	lastOK [][]byte
	// series collects the request's distinct tag sets when countSeries is set (the series budget reads them).
	countSeries bool
	series      map[seriesID]struct{}
	last        seriesID
	prevArena   []byte   // the last hashed line's tag values as read, and its keys: a line repeating them is
	prevKeys    [][]byte // the same tag set, found by comparing bytes instead of hashing them again
	// note is what the presence digest keeps of the request: its points, newest time and last position.
	note presence.Batch
}

// seriesIDs returns the request's distinct tag sets.
func (c *checker) seriesIDs() []seriesID {
	out := make([]seriesID, 0, len(c.series))
	for id := range c.series {
		out = append(out, id)
	}
	return out
}

// addSeries records the current line's tag set. Most lines repeat the previous one's tags byte for byte: those
// are compared, not hashed.
func (c *checker) addSeries(mr *measurementRules) {
	if c.series != nil && mr == c.last.m && bytes.Equal(c.arena, c.prevArena) && sameKeys(c.tags, c.prevKeys) {
		return
	}
	id := seriesID{m: mr, hash: tagSetHash(c.tags)}
	if c.series == nil {
		c.series = map[seriesID]struct{}{}
	}
	c.series[id] = struct{}{}
	c.last = id
	c.prevArena = append(c.prevArena[:0], c.arena...)
	c.prevKeys = c.prevKeys[:0]
	for _, t := range c.tags {
		c.prevKeys = append(c.prevKeys, t.key)
	}
}

// sameKeys reports whether tags has exactly keys, in order (keys are the rules' own slices: compared by identity).
func sameKeys(tags []tag, keys [][]byte) bool {
	if len(tags) != len(keys) {
		return false
	}
	for i, t := range tags {
		if &t.key[0] != &keys[i][0] || len(t.key) != len(keys[i]) {
			return false
		}
	}
	return true
}

// check parses every line of body, refuses the whole body at the first line that breaks the schema, and returns the
// points re-encoded (nanosecond timestamps, sorted tags, clientId set), so InfluxDB receives exactly what was
// checked. One decoder reads the whole body; only when it finds a problem is the body read again line by line (line
// protocol has one point per line) to name the physical line in the message.
func (c *checker) check(body []byte) (out []byte, points int, err error) {
	c.device = []byte(c.b.device)
	c.lastOK = make([][]byte, c.rules.slots)
	c.enc.SetBuffer(make([]byte, 0, len(body)+len(body)/8))
	c.enc.SetPrecision(lineprotocol.Nanosecond)
	dec := lineprotocol.NewDecoderWithBytes(body)
	for dec.Next() {
		points++
		if points > c.maxPoints {
			return nil, 0, api.Errorf(api.TooLarge, "request has more than %d points (the gateway's limit per request; split it)", c.maxPoints)
		}
		if err := c.line(dec); err != nil {
			return nil, 0, c.locate(body, points, err)
		}
	}
	return c.enc.Bytes(), points, nil
}

// locate names the physical line of the first problem in body; point and err are what the whole-body pass found.
func (c *checker) locate(body []byte, point int, err error) error {
	rest := body
	for n := 1; len(rest) > 0; n++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		dec := lineprotocol.NewDecoderWithBytes(line)
		for dec.Next() {
			c.enc.Reset() // drop what an earlier failed line left half-written
			if lerr := c.line(dec); lerr != nil {
				return lineError(fmt.Sprintf("line %d", n), lerr)
			}
		}
	}
	return lineError(fmt.Sprintf("point %d", point), err) // a value spanning lines: name the point instead
}

// refusal is a line's problem before the line number is added; forbidden marks a clientId that is not the device's.
type refusal struct {
	msg       string
	forbidden bool
}

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

func lineError(where string, err error) error {
	var de *lineprotocol.DecodeError
	if errors.As(err, &de) {
		return api.Errorf(api.Invalid, "%s, column %d: %s", where, de.Column, clip([]byte(de.Err.Error()), 200))
	}
	var r *refusal
	if errors.As(err, &r) && r.forbidden {
		return api.Errorf(api.Forbidden, "%s: %s", where, r.msg)
	}
	return api.Errorf(api.Invalid, "%s: %s", where, err.Error())
}

func (c *checker) line(dec *lineprotocol.Decoder) error {
	m, err := dec.Measurement()
	if err != nil {
		return err
	}
	mr, ok := c.rules.m[string(m)]
	if !ok {
		return refuse("measurement %s is not in the schema", clip(m, 64))
	}
	if err := c.readTags(dec, mr); err != nil {
		return err
	}
	if c.countSeries {
		c.addSeries(mr)
	}
	c.enc.StartLine(mr.name)
	for _, t := range c.tags {
		c.enc.AddTagRaw(t.key, t.value)
	}
	c.seen = c.seen[:0]
	lat, lon := math.NaN(), math.NaN()
	for {
		k, v, err := dec.NextField()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
		f, ok := mr.fields[string(k)]
		if !ok {
			return refuse("field %s is not in the schema of measurement %s", clip(k, 64), mr.name)
		}
		if v.Kind() != f.kind {
			return refuse("field %s of measurement %s must be %s, got %s", f.name, mr.name, f.typ, kindName(v.Kind()))
		}
		for _, s := range c.seen {
			if s == f.name {
				return refuse("field %s given twice", f.name)
			}
		}
		c.seen = append(c.seen, f.name)
		switch f.pos {
		case latCoord:
			lat = v.FloatV()
		case lonCoord:
			lon = v.FloatV()
		}
		c.enc.AddFieldRaw(k, v)
	}
	t, err := dec.Time(c.b.precision, c.b.now)
	if err != nil {
		return err
	}
	if t.After(c.b.newest) {
		return refuse("timestamp %s is more than %s in the future", t.UTC().Format(time.RFC3339Nano), maxFuture)
	}
	if !c.b.oldest.IsZero() && t.Before(c.b.oldest) {
		return refuse("timestamp %s is older than the bucket's retention period", t.UTC().Format(time.RFC3339Nano))
	}
	c.enc.EndLine(t)
	if err := c.enc.Err(); err != nil {
		// a tag value the encoder cannot write back (e.g. a trailing backslash)
		c.enc.ClearErr()
		return refuse("the point cannot be encoded: %s", clip([]byte(err.Error()), 200))
	}
	c.note.Add(t, lat, lon)
	return nil
}

// readTags collects the line's tags (schema keys only, each once; clientId must be the device's and is added when
// missing), sorted by key as the encoder requires.
func (c *checker) readTags(dec *lineprotocol.Decoder, mr *measurementRules) error {
	c.tags, c.arena = c.tags[:0], c.arena[:0]
	client := false
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
		tr, ok := mr.tags[string(k)]
		if !ok {
			return refuse("tag %s is not in the schema of measurement %s", clip(k, 64), mr.name)
		}
		key := tr.key
		for _, t := range c.tags {
			if bytes.Equal(t.key, key) {
				return refuse("tag %s given twice", key)
			}
		}
		if tr.client {
			if string(v) != c.b.device {
				return &refusal{msg: fmt.Sprintf("clientId %s is not the authenticated device's id", clip(v, 64)), forbidden: true}
			}
			client = true
		} else if !bytes.Equal(v, c.lastOK[tr.slot]) || c.lastOK[tr.slot] == nil {
			if why := tr.rule.Check(v); why != "" {
				return refuse("tag %s value %s %s", key, clip(v, 64), why)
			}
			c.lastOK[tr.slot] = append(c.lastOK[tr.slot][:0], v...)
		}
		start := len(c.arena)
		c.arena = append(c.arena, v...)
		// a value keeps pointing at the arena's array of its time: growing copies, never overwrites
		c.tags = append(c.tags, tag{key: key, value: c.arena[start:len(c.arena):len(c.arena)]})
	}
	if !client {
		c.tags = append(c.tags, tag{key: mr.tags[schema.TagClientID].key, value: c.device})
	}
	slices.SortFunc(c.tags, func(a, b tag) int { return bytes.Compare(a.key, b.key) })
	return nil
}

func kindName(k lineprotocol.ValueKind) string {
	for t, kk := range kindOf {
		if kk == k {
			return string(t)
		}
	}
	return "unknown"
}

// clip quotes caller bytes for a message, at most n bytes of them (cut on a rune boundary).
func clip(b []byte, n int) string {
	if len(b) > n {
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		return strconv.Quote(string(b[:n])) + "…"
	}
	return strconv.Quote(string(b))
}
