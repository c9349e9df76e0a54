package ctc

import (
	"bytes"
	"unicode/utf8"
	"unsafe"
)

// scanReading decodes the plain shape of a NOT_DYN_READING without
// encoding/json, which steps a state machine over every byte twice
// (validate, then decode) and was still ~2 ms of a ~200 KB CSV frame: here
// each string is one bytes.IndexByte to its closing quote and one check of
// its bytes. It accepts only the shape gateways send:
//
//	{"Type":"NOT_DYN_READING", "From":"…", "Target":"…",
//	 "Data":{"ID":<number or string>, "Serial":"…", "Time":"…", "X":"…", "Y":"…", "Z":"…"}}
//
// keys in any order and ASCII case (as encoding/json matches them), each
// at most once, any of them absent, JSON white space anywhere between
// tokens. Anything else (another key, a duplicate, null, a nested value, a
// non-ASCII key, a control character, invalid UTF-8, a malformed
// number) reports !ok and the frame goes encoding/json's way, so
// the answer is always the envelope's (FuzzDecode checks it). The caller
// has checked that the frame holds no backslash, so no string is escaped.
//
// With inPlace, X, Y and Z point into frame instead of being copied.
func scanReading(frame []byte, inPlace bool) (*Reading, bool) {
	s := scanner{b: frame, inPlace: inPlace}
	if !s.consume('{') {
		return nil, false
	}
	var r Reading
	var seen [4]bool // Type, From, Target, Data
	for first := true; ; first = false {
		// A comma is always followed by a key, so "{…,}" fails there.
		if s.consume('}') {
			s.skipSpace()
			// Without Type (as in {}) the envelope reports the error.
			return &r, seen[0] && s.i == len(s.b)
		}
		if !first && !s.consume(',') {
			return nil, false
		}
		key, ok := s.key()
		if !ok {
			return nil, false
		}
		k := topKey(key)
		if k < 0 || seen[k] {
			return nil, false
		}
		seen[k] = true
		switch k {
		case 0:
			if v, ok := s.str(); !ok || v != TypeNotDynReading {
				return nil, false
			}
		case 1, 2:
			if _, ok := s.str(); !ok {
				return nil, false
			}
		case 3:
			if !s.data(&r) {
				return nil, false
			}
		}
	}
}

// topKey numbers the envelope's keys as encoding/json would match them
// (ASCII case folded); -1 for any other.
func topKey(k []byte) int {
	switch {
	case bytes.EqualFold(k, []byte("Type")):
		return 0
	case bytes.EqualFold(k, []byte("From")):
		return 1
	case bytes.EqualFold(k, []byte("Target")):
		return 2
	case bytes.EqualFold(k, []byte("Data")):
		return 3
	}
	return -1
}

type scanner struct {
	b []byte
	i int
	// inPlace makes samples return strings that share b's bytes.
	inPlace bool
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume skips white space and c, if c is next.
func (s *scanner) consume(c byte) bool {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// raw returns the bytes of the string starting at the next quote, without
// its quotes: no control character, and ASCII or valid UTF-8 (which
// encoding/json keeps as it is).
func (s *scanner) raw() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	end := bytes.IndexByte(s.b[s.i:], '"')
	if end < 0 {
		return nil, false
	}
	v := s.b[s.i : s.i+end]
	ascii := true
	for _, c := range v {
		if c < 0x20 {
			return nil, false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(v) {
		return nil, false
	}
	s.i += end + 1
	return v, true
}

func (s *scanner) str() (string, bool) {
	v, ok := s.raw()
	return string(v), ok
}

// samples reads an axis's string: a copy, or with inPlace the frame's own
// bytes (~65 KB an axis that are not copied).
func (s *scanner) samples() (string, bool) {
	if !s.inPlace {
		return s.str()
	}
	v, ok := s.raw()
	if !ok || len(v) == 0 {
		return "", ok
	}
	return unsafe.String(&v[0], len(v)), true
}

// key reads a key and its colon; keys must be ASCII (encoding/json folds
// a few non-ASCII letters onto ASCII ones, which this does not).
func (s *scanner) key() ([]byte, bool) {
	k, ok := s.raw()
	if !ok || !s.consume(':') {
		return nil, false
	}
	for _, c := range k {
		if c >= 0x80 {
			return nil, false
		}
	}
	return k, true
}

// data reads the Data object into r.
func (s *scanner) data(r *Reading) bool {
	if !s.consume('{') {
		return false
	}
	var seen [6]bool
	for first := true; ; first = false {
		if s.consume('}') {
			return true
		}
		if !first && !s.consume(',') {
			return false
		}
		key, ok := s.key()
		if !ok {
			return false
		}
		var k int
		switch {
		case bytes.EqualFold(key, []byte("ID")):
			k = 0
		case bytes.EqualFold(key, []byte("Serial")):
			k = 1
		case bytes.EqualFold(key, []byte("Time")):
			k = 2
		case bytes.EqualFold(key, []byte("X")):
			k = 3
		case bytes.EqualFold(key, []byte("Y")):
			k = 4
		case bytes.EqualFold(key, []byte("Z")):
			k = 5
		default:
			return false
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		if k == 0 {
			if !s.id(r) {
				return false
			}
			continue
		}
		var v string
		if k >= 3 {
			v, ok = s.samples()
		} else {
			v, ok = s.str()
		}
		if !ok {
			return false
		}
		switch k {
		case 1:
			r.Serial = Text(v)
		case 2:
			r.Time = v
		case 3:
			r.X = v
		case 4:
			r.Y = v
		case 5:
			r.Z = v
		}
	}
}

// id reads ID: a string or a JSON number, kept as sent (a Scalar).
func (s *scanner) id(r *Reading) bool {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == '"' {
		start := s.i
		if _, ok := s.str(); !ok {
			return false
		}
		r.ID = append(Scalar(nil), s.b[start:s.i]...)
		return true
	}
	j := s.i
	for j < len(s.b) && isDecimalByte(s.b[j]) {
		j++
	}
	tok := s.b[s.i:j]
	if !isJSONNumber(string(tok)) {
		return false
	}
	r.ID = append(Scalar(nil), tok...)
	s.i = j
	return true
}
