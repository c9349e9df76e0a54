package ctc

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrMalformedWaveform wraps every failure to decode the samples of a
// NOT_DYN_READING: an empty axis, a value that is not a finite number, bad
// base64, or axes of unequal length. A reading that fails this way is
// FAILED with "malformed waveform"; the frame itself was well formed, which
// is why this is not ErrMalformed.
var ErrMalformedWaveform = errors.New("ctc: malformed waveform")

// Waveform is the three axes of one reading, in g, all of the same length.
type Waveform struct {
	X, Y, Z []float64
}

// DecodeWaveform decodes the X, Y and Z strings of a NOT_DYN_READING with
// DecodeAxis (each axis may use its own encoding) and checks that the axes
// have the same length, since every later step pairs them sample by sample.
// Every error wraps ErrMalformedWaveform.
func DecodeWaveform(x, y, z string) (Waveform, error) {
	var w Waveform
	if err := DecodeWaveformInto(&w, x, y, z); err != nil {
		return Waveform{}, err
	}
	return w, nil
}

// DecodeWaveformInto is DecodeWaveform into w, reusing the arrays of its
// slices (a worker that decodes reading after reading allocates nothing
// once they are large enough). On error w's contents are unspecified.
func DecodeWaveformInto(w *Waveform, x, y, z string) error {
	var err error
	if w.X, err = AppendAxis(w.X[:0], x); err != nil {
		return fmt.Errorf("axis x: %w", err)
	}
	if w.Y, err = AppendAxis(w.Y[:0], y); err != nil {
		return fmt.Errorf("axis y: %w", err)
	}
	if w.Z, err = AppendAxis(w.Z[:0], z); err != nil {
		return fmt.Errorf("axis z: %w", err)
	}
	if len(w.X) != len(w.Y) || len(w.X) != len(w.Z) {
		return fmt.Errorf("%w: axes of unequal length: x %d, y %d, z %d",
			ErrMalformedWaveform, len(w.X), len(w.Y), len(w.Z))
	}
	return nil
}

// DecodeAxis decodes one axis of a NOT_DYN_READING into samples in g.
// Gateways send one of three encodings and do not say which, so the
// encoding is chosen from the text alone, after trimming surrounding
// white space, by the first rule that matches:
//
//  1. It starts with "[": a JSON array of numbers in g ("[0.1, -0.2]").
//  2. It contains a comma: comma-separated decimals in g ("0.1,-0.2").
//  3. It is made only of digits, '.', '+', '-', 'e' and 'E': one decimal
//     sample in g ("0.1"), even where the same text is also valid base64
//     ("1234"); base64 of a real reading is never made only of these.
//     So "1e400" and "1e400000" are out-of-range decimals, not base64.
//  4. Otherwise: standard base64 (padding optional, line breaks not
//     allowed, trailing bits zero) of little-endian int16 values in
//     milli-g, so an even number of bytes; each value is divided by 1000.
//     Short text can be valid base64 by chance: "abc" is one sample.
//
// Decimals are what strconv.ParseFloat reads, limited to the characters of
// rule 3 (no "NaN", "Inf", hex or underscores); JSON numbers must also
// follow JSON's grammar. White space around each value is ignored. Anything
// else is an error wrapping ErrMalformedWaveform: an empty axis or array, an
// empty value between commas, a value that is not a finite number
// (including one out of float64's range such as 1e400), a JSON element that
// is not a number (null, "1", true), text after the closing bracket, bad
// base64 or non-zero trailing bits, or an odd number of base64 bytes.
func DecodeAxis(s string) ([]float64, error) {
	return AppendAxis(nil, s)
}

// AppendAxis is DecodeAxis appending the samples to dst: the same
// samples, the same errors (and then nil).
func AppendAxis(dst []float64, s string) ([]float64, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, fmt.Errorf("%w: empty axis", ErrMalformedWaveform)
	case s[0] == '[':
		return decodeJSONArray(dst, s)
	case strings.IndexByte(s, ',') >= 0:
		return decodeDecimals(dst, s)
	case isDecimalText(s):
		v, err := parseDecimal(s)
		if err != nil {
			return nil, fmt.Errorf("%w: sample 0: %v", ErrMalformedWaveform, err)
		}
		return append(dst, v), nil
	default:
		return decodeBase64(dst, s)
	}
}

// decodeDecimals reads comma-separated decimals without splitting the text
// into a slice of strings: at most one allocation for the result, none
// per value. The common value ("-0.0123", ASCII spaces around it) is read
// in the same pass that finds its end, instead of finding the comma, then
// trimming, then parsing (three passes): a reading's three axes in 0.28
// instead of 0.37 ms (BenchmarkDecodeWaveform/decimals, 2026-12-05). Any
// other value is cut at its comma and read by parseDecimal, as before,
// with the same result.
func decodeDecimals(dst []float64, s string) ([]float64, error) {
	out := slices.Grow(dst, strings.Count(s, ",")+1)
	for i, n := 0, 0; ; n++ {
		v, end, ok := scanSimpleDecimal(s, i)
		if !ok {
			tok, _, _ := strings.Cut(s[i:], ",")
			var err error
			if v, err = parseDecimal(strings.TrimSpace(tok)); err != nil {
				return nil, fmt.Errorf("%w: sample %d: %v", ErrMalformedWaveform, n, err)
			}
			end = i + len(tok)
		}
		out = append(out, v)
		if end == len(s) {
			return out, nil
		}
		i = end + 1 // past the comma
	}
}

// scanSimpleDecimal reads, from s[i:], ASCII white space, what
// parseSimpleDecimal accepts, and ASCII white space, up to a comma or the
// end of s, whose index it returns. Anything else reports !ok, and the
// caller reads the value the slow way.
func scanSimpleDecimal(s string, i int) (v float64, end int, ok bool) {
	for i < len(s) && isASCIISpace(s[i]) {
		i++
	}
	v, i, ok = simpleDecimalAt(s, i)
	for i < len(s) && isASCIISpace(s[i]) {
		i++
	}
	if !ok || (i < len(s) && s[i] != ',') {
		return 0, 0, false
	}
	return v, i, true
}

// isASCIISpace is the ASCII part of what strings.TrimSpace trims.
func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// decodeJSONArray reads a JSON array of numbers by hand: encoding/json
// would turn a null element into 0 and costs far more per value.
func decodeJSONArray(dst []float64, s string) ([]float64, error) {
	out := slices.Grow(dst, strings.Count(s, ",")+1)
	start := len(out)
	i := skipJSONSpace(s, 1)
	if i < len(s) && s[i] == ']' {
		return nil, fmt.Errorf("%w: empty array", ErrMalformedWaveform)
	}
	for {
		j := i
		for j < len(s) && isDecimalByte(s[j]) {
			j++
		}
		tok := s[i:j]
		if !isJSONNumber(tok) {
			return nil, fmt.Errorf("%w: element %d: %s is not a JSON number", ErrMalformedWaveform, len(out)-start, clip(s[i:]))
		}
		v, err := parseDecimal(tok)
		if err != nil {
			return nil, fmt.Errorf("%w: element %d: %v", ErrMalformedWaveform, len(out)-start, err)
		}
		out = append(out, v)
		i = skipJSONSpace(s, j)
		if i >= len(s) {
			return nil, fmt.Errorf("%w: array not closed", ErrMalformedWaveform)
		}
		switch s[i] {
		case ',':
			i = skipJSONSpace(s, i+1)
		case ']':
			if i != len(s)-1 {
				return nil, fmt.Errorf("%w: text after the array: %s", ErrMalformedWaveform, clip(s[i+1:]))
			}
			return out, nil
		default:
			return nil, fmt.Errorf("%w: element %d: unexpected %s", ErrMalformedWaveform, len(out)-start, clip(s[i:]))
		}
	}
}

// base64Chunk is how many base64 characters are decoded at a time through
// buffers on the stack. A multiple of 4 (whole quanta) decoding to a
// multiple of 2 bytes (whole int16 values), so no value straddles chunks.
const base64Chunk = 1024

// decodeBase64 decodes base64 of little-endian int16 milli-g in chunks,
// so the only allocation is the result (if dst is too small).
func decodeBase64(dst []float64, s string) ([]float64, error) {
	body := strings.TrimRight(s, "=")
	pad := len(s) - len(body)
	// encoding/base64 skips CR and LF anywhere, which would shift the
	// chunks out of step with the quanta; gateways never wrap lines.
	if strings.ContainsAny(body, "\r\n") {
		return nil, fmt.Errorf("%w: line break in base64", ErrMalformedWaveform)
	}
	if pad > 2 || (pad > 0 && (len(body)+pad)%4 != 0) {
		return nil, fmt.Errorf("%w: bad base64 padding", ErrMalformedWaveform)
	}
	if len(body)%4 == 1 {
		return nil, fmt.Errorf("%w: base64 of %d characters", ErrMalformedWaveform, len(body))
	}
	n := len(body) / 4 * 3
	if r := len(body) % 4; r > 0 {
		n += r - 1
	}
	if n%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of base64 bytes (%d) for int16 samples", ErrMalformedWaveform, n)
	}
	enc := base64.RawStdEncoding.Strict()
	out := slices.Grow(dst, n/2)
	var src [base64Chunk]byte
	var raw [base64Chunk / 4 * 3]byte
	for off := 0; off < len(body); off += base64Chunk {
		m := copy(src[:], body[off:])
		k, err := enc.Decode(raw[:], src[:m])
		if err != nil {
			var at base64.CorruptInputError
			if errors.As(err, &at) {
				return nil, fmt.Errorf("%w: bad base64 at character %d", ErrMalformedWaveform, off+int(at))
			}
			return nil, fmt.Errorf("%w: base64: %v", ErrMalformedWaveform, err)
		}
		for b := 0; b+1 < k; b += 2 {
			out = append(out, float64(int16(binary.LittleEndian.Uint16(raw[b:])))/1000)
		}
	}
	return out, nil
}

// parseDecimal reads one finite decimal made only of the characters of
// isDecimalByte, so strconv's "NaN", "Inf", hex and underscores are refused.
func parseDecimal(tok string) (float64, error) {
	if tok == "" {
		return 0, errors.New("empty value")
	}
	if v, ok := parseSimpleDecimal(tok); ok {
		return v, nil
	}
	if !isDecimalText(tok) {
		return 0, fmt.Errorf("%s is not a decimal number", clip(tok))
	}
	v, err := strconv.ParseFloat(tok, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%s is not a finite number", clip(tok))
	}
	return v, nil
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseSimpleDecimal reads the common "-0.0123" without an exponent and
// with at most 15 digits, three to four times faster than
// strconv.ParseFloat. The result is the same, correctly rounded: both the
// digits as an integer (below 2^53) and the power of ten are exact float64s,
// so one IEEE division rounds once (Clinger's fast path, which strconv
// itself takes after a slower scan). Anything else reports !ok and goes to
// strconv.
func parseSimpleDecimal(s string) (float64, bool) {
	v, end, ok := simpleDecimalAt(s, 0)
	return v, ok && end == len(s)
}

// simpleDecimalAt reads a sign, digits and at most one dot from s[i:],
// up to the first other byte, whose index it returns; ok if that was a
// decimal of 1 to 15 digits.
func simpleDecimalAt(s string, i int) (v float64, end int, ok bool) {
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var mant uint64
	digits, frac := 0, -1
scan:
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			break scan
		}
	}
	if digits == 0 || digits > 15 {
		return 0, i, false
	}
	v = float64(mant)
	if frac > 0 {
		v /= pow10[frac]
	}
	if neg {
		v = -v
	}
	return v, i, true
}

func isDecimalByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E'
}

func isDecimalText(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDecimalByte(s[i]) {
			return false
		}
	}
	return true
}

// isJSONNumber reports whether s is exactly a number of JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = skipDigits(s, i)
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := skipDigits(s, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

func skipDigits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

func skipJSONSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// clip quotes at most the first 24 bytes of s for an error message, so a
// megabyte of garbage does not end up in a log line.
func clip(s string) string {
	const limit = 24
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}
