package ctc

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// Text is a field a gateway may send as a string or as a bare number or
// boolean: it holds the string, or the literal. Anything else (an object,
// an array, null) reads as "". It never fails to decode, so one odd field
// does not cost its frame; what it is read as is asked for where it is
// used (Int64, Float, Bool), and "" reads as nothing.
type Text string

// UnmarshalJSON never fails: what is not a scalar is "".
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*t = ""
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			*t = Text(s)
		}
	case b[0] == '-' || '0' <= b[0] && b[0] <= '9' || bytes.Equal(b, []byte("true")) || bytes.Equal(b, []byte("false")):
		*t = Text(b)
	}
	return nil
}

// Int64 reads a whole number: "12345", 12345, 8192.0 or "1e3"; not one
// with a fraction, or beyond int64.
func (t Text) Int64() (int64, bool) {
	s := strings.TrimSpace(string(t))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// Float reads a finite number.
func (t Text) Float() (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(string(t)), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Bool reads true or false, as words (any case) or as numbers (0 is
// false, any other number true).
func (t Text) Bool() (v, ok bool) {
	s := strings.TrimSpace(string(t))
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	if f, ok := t.Float(); ok {
		return f != 0, true
	}
	return false, false
}

// Flag is a boolean a gateway may send as true/false, 0/1 or their
// strings. Unlike Text it fails on anything else: it is what a frame
// means (RTN_LOGIN's Success), not a detail of it.
type Flag bool

var errNotAFlag = errors.New("not a boolean, 0/1, or their strings")

// UnmarshalJSON reads true, false, numbers and their strings; null is
// false, as encoding/json reads it for a bool.
func (f *Flag) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var t Text
	_ = t.UnmarshalJSON(b)
	v, ok := t.Bool()
	if !ok {
		return errNotAFlag
	}
	*f = Flag(v)
	return nil
}
