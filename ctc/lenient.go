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

// Scalar is a field kept as the JSON a gateway sent when that is a scalar
// (a string, a number, true or false); anything else (an object, an
// array, null) is nil. Such fields were decoded into Go values of any
// shape, and a gateway that sent a tree there ("Temp":[{},{},…]) made
// ~21 bytes of heap of each byte of its frame, a map per 3 bytes: one
// gateway's frames, each within the flood limits, held ~250 MiB (found by
// an audit, helper 5). A tree is now skipped, not built.
type Scalar []byte

// UnmarshalJSON never fails: what is not a scalar is nil.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*s = nil
	if len(b) > 0 && b[0] != '{' && b[0] != '[' && b[0] != 'n' {
		*s = append(Scalar(nil), b...)
	}
	return nil
}

// MarshalJSON writes the scalar as it was sent (nil as null).
func (s Scalar) MarshalJSON() ([]byte, error) {
	if len(s) == 0 {
		return []byte("null"), nil
	}
	return s, nil
}

// Text is the scalar read as Text: a string's contents, or the literal.
func (s Scalar) Text() Text {
	var t Text
	_ = t.UnmarshalJSON(s)
	return t
}

// Int64 reads a whole number in decimal: "12345", 12345, or one with a
// zero fraction (8192.0, as some firmware writes counts); not one with a
// fraction, an exponent, hex or underscores, or beyond int64.
func (t Text) Int64() (int64, bool) {
	s := strings.TrimSpace(string(t))
	if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Float reads a finite decimal number (no hex, no underscores: Go's
// ParseFloat takes both).
func (t Text) Float() (float64, bool) {
	s := strings.TrimSpace(string(t))
	if strings.ContainsAny(s, "xX_pP") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Bool reads true or false as the words (any case) or as 1 and 0, bare
// or quoted; nothing else (2 or -1 is no boolean: read as true, an error
// code in Success was a successful login).
func (t Text) Bool() (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(string(t))) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// Flag is a boolean a gateway may send as true/false, 0/1 or their
// strings, and nothing else. Unlike Text it fails on anything else: it is what a frame
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
