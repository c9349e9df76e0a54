package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// maxMetadataDepth bounds metadata nesting, so PostgreSQL never runs out of
// stack on a hostile document.
const maxMetadataDepth = 128

// body is a JSON object request body being validated field by field, so
// one response lists every problem found.
type body struct {
	fields  map[string]json.RawMessage
	seen    map[string]bool
	details []Detail
}

// isJSON says whether a Content-Type is application/json in UTF-8 (other
// parameters are fine): JSON is UTF-8 (RFC 8259 §8.1), and a body that
// says it is in another charset is a media type gatewayd does not read
// (415), not a malformed one (it was 400 "not valid UTF-8").
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return false
	}
	return err == nil && mt == fiber.MIMEApplicationJSON
}

// jsonBodiesOnly answers 415 to any request that carries a body that is
// not JSON, on every route, before anything reads that body; and to one
// whose body has a content coding: Fiber's Body() inflates gzip, deflate
// and brotli without a bound, after the 1 MiB limit has counted the bytes
// on the wire, so 10 KB of gzip stored a 10 MiB row (and a small bomb
// could take the process's memory).
func jsonBodiesOnly(c *fiber.Ctx) error {
	if len(c.Request().Body()) == 0 {
		return c.Next()
	}
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return fiber.ErrUnsupportedMediaType
	}
	if ce := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); ce != "" && !strings.EqualFold(ce, "identity") {
		return errContentCoding
	}
	return c.Next()
}

var errContentCoding = &Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE",
	Message: "Request body must be sent without a Content-Encoding"}

// parseBody reads a JSON object. A missing body is 400 whatever the
// Content-Type says (a client that sends none usually sends no type
// either); a body of any type but JSON is 415.
func parseBody(c *fiber.Ctx) (*body, error) {
	raw := c.Request().Body() // as sent: never inflated (jsonBodiesOnly)
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, validationError(Detail{Field: "body", Message: "is required"})
	}
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return nil, fiber.ErrUnsupportedMediaType
	}
	if d := strictJSON(raw); d != nil {
		return nil, validationError(*d)
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, validationError(Detail{Field: "body", Message: "must be a JSON object"})
		}
		return nil, validationError(Detail{Field: "body", Message: "is not valid JSON"})
	}
	if fields == nil {
		return nil, validationError(Detail{Field: "body", Message: "must be a JSON object"})
	}
	return &body{fields: fields, seen: make(map[string]bool, len(fields))}, nil
}

// strictJSON finds what encoding/json lets through silently: invalid
// UTF-8 (replaced with U+FFFD), an unpaired surrogate escape (likewise),
// a key given twice in one object (the last one wins) and anything after
// the top-level value (Decoder.More is false before a stray '}' or ']').
// It also bounds nesting. It returns the first problem found, nil for none.
// A hand-written scan: json.Decoder.Token took 165 ms for a 1 MiB body.
func strictJSON(raw []byte) *Detail {
	if !utf8.Valid(raw) {
		return &Detail{Field: "body", Message: "is not valid UTF-8"}
	}
	sc := strictScanner{b: raw, field: "body"}
	sc.space()
	if !sc.value() {
		return sc.problem
	}
	sc.space()
	if sc.i < len(sc.b) {
		return &Detail{Field: "body", Message: "must hold exactly one JSON value, with nothing after it"}
	}
	return nil
}

// strictScanner walks one JSON text (RFC 8259), keeping the first problem.
type strictScanner struct {
	b       []byte
	i       int
	depth   int
	field   string // the top-level field being read, for details
	problem *Detail
}

func (sc *strictScanner) fail(field, msg string) bool {
	sc.problem = &Detail{Field: field, Message: msg}
	return false
}

func (sc *strictScanner) syntax() bool { return sc.fail("body", "is not valid JSON") }

func (sc *strictScanner) peek() byte {
	if sc.i < len(sc.b) {
		return sc.b[sc.i]
	}
	return 0
}

func (sc *strictScanner) space() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

func (sc *strictScanner) value() bool {
	switch c := sc.peek(); c {
	case '{', '[':
		return sc.container(c)
	case '"':
		_, ok := sc.str(false)
		return ok
	case 't':
		return sc.literal("true")
	case 'f':
		return sc.literal("false")
	case 'n':
		return sc.literal("null")
	}
	return sc.number()
}

// container reads an object or an array; an object's keys must differ.
func (sc *strictScanner) container(open byte) bool {
	if sc.depth++; sc.depth > maxMetadataDepth+1 { // the body itself is one level
		return sc.fail(sc.field, tooDeep())
	}
	closing := byte(']')
	if open == '{' {
		closing = '}'
	}
	sc.i++
	sc.space()
	if sc.peek() == closing {
		sc.i++
		sc.depth--
		return true
	}
	var keys map[string]struct{}
	for {
		if open == '{' {
			if sc.peek() != '"' {
				return sc.syntax()
			}
			k, ok := sc.str(true)
			if !ok {
				return false
			}
			if _, dup := keys[k]; dup {
				if sc.depth == 1 {
					return sc.fail(k, "is given more than once")
				}
				return sc.fail(sc.field, fmt.Sprintf("repeats the key %q in one object", k))
			}
			if keys == nil {
				keys = make(map[string]struct{}, 8)
			}
			keys[k] = struct{}{}
			if sc.depth == 1 {
				sc.field = k
			}
			sc.space()
			if sc.peek() != ':' {
				return sc.syntax()
			}
			sc.i++
			sc.space()
		}
		if !sc.value() {
			return false
		}
		sc.space()
		switch sc.peek() {
		case ',':
			sc.i++
			sc.space()
		case closing:
			sc.i++
			sc.depth--
			return true
		default:
			return sc.syntax()
		}
	}
}

// str reads a string; decode asks for its value (keys only).
func (sc *strictScanner) str(decode bool) (string, bool) {
	start := sc.i
	sc.i++
	escaped := false
	for sc.i < len(sc.b) {
		switch c := sc.b[sc.i]; {
		case c == '"':
			sc.i++
			if !decode {
				return "", true
			}
			if !escaped {
				return string(sc.b[start+1 : sc.i-1]), true
			}
			var k string
			if json.Unmarshal(sc.b[start:sc.i], &k) != nil {
				return "", sc.syntax()
			}
			return k, true
		case c == '\\':
			escaped = true
			switch sc.peekAt(1) {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				sc.i += 2
			case 'u':
				r, ok := hexEscape(sc.b, sc.i)
				if !ok {
					return "", sc.syntax()
				}
				sc.i += 6
				if r >= 0xD800 && r <= 0xDBFF {
					if low, ok := hexEscape(sc.b, sc.i); ok && low >= 0xDC00 && low <= 0xDFFF {
						sc.i += 6
						continue
					}
				}
				if r >= 0xD800 && r <= 0xDFFF {
					return "", sc.fail("body", `contains a \u escape of an unpaired UTF-16 surrogate (not a character)`)
				}
			default:
				return "", sc.syntax()
			}
		case c < 0x20:
			return "", sc.syntax()
		default:
			sc.i++
		}
	}
	return "", sc.syntax()
}

func (sc *strictScanner) peekAt(n int) byte {
	if sc.i+n < len(sc.b) {
		return sc.b[sc.i+n]
	}
	return 0
}

func (sc *strictScanner) literal(word string) bool {
	if !bytes.HasPrefix(sc.b[sc.i:], []byte(word)) {
		return sc.syntax()
	}
	sc.i += len(word)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *strictScanner) number() bool {
	if sc.peek() == '-' {
		sc.i++
	}
	switch c := sc.peek(); {
	case c == '0':
		sc.i++
	case c >= '1' && c <= '9':
		sc.digits()
	default:
		return sc.syntax()
	}
	if sc.peek() == '.' {
		sc.i++
		if !sc.digits() {
			return sc.syntax()
		}
	}
	if c := sc.peek(); c == 'e' || c == 'E' {
		sc.i++
		if c := sc.peek(); c == '+' || c == '-' {
			sc.i++
		}
		if !sc.digits() {
			return sc.syntax()
		}
	}
	return true
}

func (sc *strictScanner) digits() bool {
	start := sc.i
	for sc.i < len(sc.b) && sc.b[sc.i] >= '0' && sc.b[sc.i] <= '9' {
		sc.i++
	}
	return sc.i > start
}

// hexEscape reads the \uXXXX escape at raw[i:].
func hexEscape(raw []byte, i int) (rune, bool) {
	if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
	return rune(n), err == nil
}

func (b *body) fail(field, format string, args ...any) {
	b.details = append(b.details, Detail{Field: field, Message: fmt.Sprintf(format, args...)})
}

// raw returns a field's JSON; present is false when the field is absent.
func (b *body) raw(name string) (json.RawMessage, bool) {
	b.seen[name] = true
	v, ok := b.fields[name]
	return v, ok
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// str reads a string field of min..max characters. A required field must
// be present; an optional one may be absent but not null.
func (b *body) str(name string, required bool, min, max int) (string, bool) {
	v, ok := b.raw(name)
	if !ok {
		if required {
			b.fail(name, "is required")
		}
		return "", false
	}
	if isNull(v) {
		b.fail(name, "must not be null")
		return "", false
	}
	return b.decodeString(name, v, min, max)
}

// name reads a "name" field: 1–255 characters, not all of them white
// space (a name of spaces names nothing a person can find again).
func (b *body) name(required bool) (string, bool) {
	v, ok := b.str("name", required, 1, 255)
	if ok && strings.TrimFunc(v, unicode.IsSpace) == "" {
		b.fail("name", "must not be blank")
		return "", false
	}
	return v, ok
}

// nullableStr reads an optional string field of at most max characters
// that may be null (which clears it).
func (b *body) nullableStr(name string, max int) (*string, bool) {
	v, ok := b.raw(name)
	if !ok {
		return nil, false
	}
	if isNull(v) {
		return nil, true
	}
	s, ok := b.decodeString(name, v, 0, max)
	if !ok {
		return nil, false
	}
	return &s, true
}

func (b *body) decodeString(name string, v json.RawMessage, min, max int) (string, bool) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		b.fail(name, "must be a string")
		return "", false
	}
	if strings.ContainsRune(s, 0) {
		b.fail(name, "must not contain NUL characters")
		return "", false
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		if min == 0 {
			b.fail(name, "must be at most %d characters", max)
		} else {
			b.fail(name, "must be between %d and %d characters", min, max)
		}
		return "", false
	}
	if rule, ok := stringRules[name]; ok {
		if msg := rule(s); msg != "" {
			b.fail(name, "%s", msg)
			return "", false
		}
	}
	return s, true
}

// stringRules are the rules of string fields beyond their length, by
// field name, wherever the field is read (create and update alike).
var stringRules = map[string]func(string) string{
	"gateway_id": gatewayIDRule,
}

// gatewayIDRule keeps gateway_id to printable ASCII identifiers, so that
// no look-alike of an existing id (GW-0١ with an Arabic-Indic digit, ＧＷ-01
// in fullwidth, an invisible U+200B) can be registered beside it.
func gatewayIDRule(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return "may contain only ASCII letters, digits, '-', '_', '.' and ':'"
		}
	}
	return ""
}

func (b *body) uuid(name string, required bool) (uuid.UUID, bool) {
	v, ok := b.raw(name)
	if !ok {
		if required {
			b.fail(name, "is required")
		}
		return uuid.Nil, false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		b.fail(name, "must be a UUID string")
		return uuid.Nil, false
	}
	id, err := parseUUID(s)
	if err != nil {
		b.fail(name, "must be a UUID")
		return uuid.Nil, false
	}
	return id, true
}

// metadata reads an optional JSON object, re-encoded so that what reaches
// the database is valid UTF-8 JSON with no NUL characters.
func (b *body) metadata() (json.RawMessage, bool) {
	const name = "metadata"
	v, ok := b.raw(name)
	if !ok {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		b.fail(name, "must be a JSON object")
		return nil, false
	}
	if msg := checkJSON(obj, 1); msg != "" {
		b.fail(name, "%s", msg)
		return nil, false
	}
	// PostgreSQL (jsonb) stores numbers as exact decimals and writes them
	// out in plain notation, so 1e131071 comes back as 131,072 digits. A
	// number keeps its digits; what its notation may add is bounded.
	if grow := numbersGrowth(obj); grow > len(v)+metadataGrowthAllowance {
		b.fail(name, "must not grow by more than its own length plus %d characters when its numbers are written in plain "+
			"decimal, as they are stored (1e3 is stored as 1000): these would add %d", metadataGrowthAllowance, min(grow, 1<<30))
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		b.fail(name, "must be a JSON object")
		return nil, false
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes())), true
}

// metadataGrowthAllowance is how much longer than sent metadata may come
// back: numbers in exponent notation are stored in plain decimal.
const metadataGrowthAllowance = 1024

// numbersGrowth is how many characters writing the numbers in v in plain
// decimal adds to their JSON text (saturating, never negative per number).
func numbersGrowth(v any) int {
	switch x := v.(type) {
	case json.Number:
		return max(0, plainDecimalLen(string(x))-len(x))
	case map[string]any:
		n := 0
		for _, e := range x {
			n = min(n+numbersGrowth(e), math.MaxInt32)
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n = min(n+numbersGrowth(e), math.MaxInt32)
		}
		return n
	}
	return 0
}

// plainDecimalLen is the length of a JSON number as PostgreSQL's numeric
// writes it: no exponent, the scale the literal implies (1.50 stays 1.50,
// 1e3 is 1000, 1E-3 is 0.001, 100e-2 is 1.00, -0 is 0). lit must be a
// valid JSON number. An exponent beyond any numeric gives MaxInt32.
func plainDecimalLen(lit string) int {
	s, neg := strings.CutPrefix(lit, "-")
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e := s[i+1:]
		sign := 1
		if e != "" && (e[0] == '+' || e[0] == '-') {
			if e[0] == '-' {
				sign = -1
			}
			e = e[1:]
		}
		if e = strings.TrimLeft(e, "0"); len(e) > 8 {
			return math.MaxInt32
		}
		n, _ := strconv.Atoi(e) // "" is 0
		exp = sign * n
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	sig := strings.TrimLeft(intPart+frac, "0") // value = sig × 10^(exp-len(frac))
	scale := len(frac) - exp                   // digits after the point
	n := 0
	switch {
	case scale <= 0 && sig == "":
		return 1 // 0
	case scale <= 0:
		n = len(sig) - scale // the digits, then zeros
	default:
		n = max(len(sig)-scale, 1) + 1 + scale // integer digits ("0" if none), point, fraction
	}
	if neg && sig != "" {
		n++
	}
	return min(n, math.MaxInt32)
}

// checkJSON checks a decoded value whose container is depth levels deep:
// only objects and arrays are levels (as in the strict scanner), so a
// number inside the deepest allowed object is fine.
func checkJSON(v any, depth int) string {
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return "must not contain NUL characters"
		}
	case map[string]any:
		if depth > maxMetadataDepth {
			return tooDeep()
		}
		for k, e := range x {
			if strings.ContainsRune(k, 0) {
				return "must not contain NUL characters"
			}
			if msg := checkJSON(e, depth+1); msg != "" {
				return msg
			}
		}
	case []any:
		if depth > maxMetadataDepth {
			return tooDeep()
		}
		for _, e := range x {
			if msg := checkJSON(e, depth+1); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func tooDeep() string {
	return fmt.Sprintf("must not be nested deeper than %d levels", maxMetadataDepth)
}

// reject marks a field that may not be sent.
func (b *body) reject(name, msg string) {
	if _, ok := b.raw(name); ok {
		b.fail(name, "%s", msg)
	}
}

// done reports unknown fields and returns every problem as one error.
func (b *body) done() error {
	var unknown []string
	for k := range b.fields {
		if !b.seen[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		b.fail(k, "is not a known field")
	}
	if len(b.details) > 0 {
		return validationError(b.details...)
	}
	return nil
}

// Field rules shared by create and update.

func (b *body) wsURL(required bool) (string, bool) {
	s, ok := b.str("url", required, 1, 500)
	if !ok {
		return "", false
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		// url.Parse takes "ws://h/gw " (the space is the path's), and it
		// was stored so; a form (the web UI's, any <input type=url>)
		// trims it, and its next edit of the gateway, url untouched, read
		// as a move to another url that needs the password (found by an
		// audit, helper 10). No URL holds white space.
		b.fail("url", "must not contain spaces or control characters")
		return "", false
	}
	u, err := url.Parse(s)
	if err == nil && u.User != nil && (u.Scheme == "ws" || u.Scheme == "wss") {
		// Said as it is: "with a host" told whoever typed
		// ws://user:pass@10.0.0.5/ nothing (the URL has one), and not
		// where the credentials go (found by an audit, helper 3).
		b.fail("url", "must not contain user info (user:password@): give the gateway's login as email and password")
		return "", false
	}
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Hostname() == "" || u.User != nil {
		b.fail("url", "must be a ws:// or wss:// URL with a host")
		return "", false
	}
	if !strings.HasPrefix(u.Host, "[") && strings.Contains(u.Hostname(), ":") {
		// url.Parse takes all before the last colon for the host name:
		// ws://h:80:90 and ws://::1 were stored and never dialled ("too
		// many colons in address"; found by an audit, helper 9).
		b.fail("url", "must have one port at most, and an IPv6 address in brackets (ws://[::1]:8080)")
		return "", false
	}
	if !validPort(u.Host) {
		b.fail("url", "must have a port from 1 to 65535 (or none)")
		return "", false
	}
	return s, true
}

// validPort says whether a URL's host has no port or a decimal one in
// 1–65535 (url.Parse takes any digits, and an empty port after ':').
func validPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || i < strings.LastIndexByte(host, ']') { // none, or inside an IPv6 literal
		return true
	}
	p := host[i+1:]
	n, err := strconv.Atoi(p)
	return digits.MatchString(p) && err == nil && n >= 1 && n <= 65535
}

func (b *body) email(required bool) (string, bool) {
	s, ok := b.str("email", required, 1, 255)
	if !ok {
		return "", false
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}) >= 0 {
		// net/mail takes any non-ASCII rune in an address: a no-break
		// space (which a form's trim removes, so the gateway's next edit
		// read as a new email that needs the password, as a url with a
		// space did), a C1 control (U+0085, invisible: "o\u0085ps@…"
		// showed as another gateway's address) or a bidi override were
		// stored, and no gateway accepts them (found by an audit, helper 8).
		b.fail("email", "must not contain spaces, control or invisible formatting characters")
		return "", false
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		b.fail("email", "must be a valid e-mail address")
		return "", false
	}
	return s, true
}

func (b *body) desiredState() (gatewayd.DesiredState, bool) {
	s, ok := b.str("desired_state", false, 1, 20)
	if !ok {
		return "", false
	}
	d := gatewayd.DesiredState(s)
	if !d.Valid() {
		b.fail("desired_state", "must be CONNECTED or DISCONNECTED")
		return "", false
	}
	return d, true
}

func (b *body) timezone() (string, bool) {
	s, ok := b.str("timezone", false, 1, 64)
	if !ok {
		return "", false
	}
	if s == "Local" || strings.ContainsAny(s, `\`) || strings.HasPrefix(s, "/") || path.Clean(s) != s || hostZoneFile(s) {
		b.fail("timezone", "must be an IANA time zone name such as Europe/Berlin")
		return "", false
	}
	if _, err := time.LoadLocation(s); err != nil {
		b.fail("timezone", "must be an IANA time zone name such as Europe/Berlin")
		return "", false
	}
	return s, true
}

// hostZoneFile says whether s names a file of the host's zoneinfo
// directory that is no IANA zone (s is a clean path: "./localtime" and
// "Europe//Berlin", spellings of the same files, are refused before;
// found by an audit, helper 12): time.LoadLocation reads that directory
// before the embedded zones, and "localtime" there is the host's own time
// (a link to /etc/localtime), which "Local" is refused for; "posixrules"
// and the posix/ and right/ trees are install artefacts (found by an
// audit, helper 5).
func hostZoneFile(s string) bool {
	return s == "localtime" || s == "posixrules" || strings.HasPrefix(s, "posix/") || strings.HasPrefix(s, "right/")
}

// Path and query parameters.

// parseUUID accepts only the canonical 36-character form (uuid.Parse
// alone also takes braces, urn:uuid: and 32 bare hex digits).
func parseUUID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, errors.New("not a UUID")
	}
	return uuid.Parse(s)
}

func pathID(c *fiber.Ctx) (uuid.UUID, error) {
	id, err := parseUUID(c.Params("id"))
	if err != nil {
		return uuid.Nil, validationError(Detail{Field: "id", Message: "must be a UUID"})
	}
	return id, nil
}

// invalid answers the problems of a request's parts (path id, query,
// body) together, as API.md §3 asks ("details lists every problem
// found"): a client told only of a bad id learned of its query's
// problems one request later. Past an error that is not a validation
// error (415, say) the rest could not be read: the first problem is
// answered alone, as before.
func invalid(errs ...error) error {
	var first error
	var details []Detail
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != "VALIDATION_ERROR" {
			return first
		}
		details = append(details, e.Details...)
	}
	if first == nil {
		return nil
	}
	return validationError(details...)
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// uuidParam parses a UUID query parameter into *dst.
func uuidParam(dst **uuid.UUID) func(string) string {
	return func(v string) string {
		id, err := parseUUID(v)
		if err != nil {
			return "must be a UUID"
		}
		*dst = &id
		return ""
	}
}

// listQuery parses limit, offset and the allowed UUID filters; anything
// else in the query string is an error, so a typo is never ignored.
func listQuery(c *fiber.Ctx, filters ...string) (store.Page, map[string]*uuid.UUID, error) {
	found := make(map[string]*uuid.UUID, len(filters))
	more := make(map[string]func(string) string, len(filters))
	for _, f := range filters {
		var id *uuid.UUID
		parse := uuidParam(&id)
		more[f] = func(val string) string {
			msg := parse(val)
			found[f] = id
			return msg
		}
	}
	page, err := pageQuery(c, more)
	if err != nil {
		return page, nil, err
	}
	return page, found, nil
}

// pageQuery parses limit and offset, and every other parameter with its
// parser in more (which returns a problem, or "" when the value is good);
// unknown or repeated parameters are errors.
func pageQuery(c *fiber.Ctx, more map[string]func(string) string) (store.Page, error) {
	return parseQuery(c, more, true)
}

// plainQuery is pageQuery for answers that are not paged: limit and
// offset are unknown parameters there.
func plainQuery(c *fiber.Ctx, more map[string]func(string) string) error {
	_, err := parseQuery(c, more, false)
	return err
}

func parseQuery(c *fiber.Ctx, more map[string]func(string) string, paged bool) (store.Page, error) {
	page := store.Page{Limit: 20}
	var details []Detail
	counts := map[string]int{}
	var failed map[string]bool // one entry per field: the first problem found
	fail := func(key, msg string) {
		if !failed[key] {
			if failed == nil {
				failed = map[string]bool{}
			}
			failed[key] = true
			details = append(details, Detail{Field: key, Message: msg})
		}
	}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		key, val := string(k), string(v)
		counts[key]++
		if counts[key] == 2 {
			fail(key, "must be given once")
		}
		if counts[key] > 1 {
			return
		}
		switch {
		case key == "limit" && paged:
			n, err := strconv.Atoi(val)
			if !digits.MatchString(val) || err != nil || n < 1 || n > 100 {
				fail(key, "must be a whole number from 1 to 100")
				return
			}
			page.Limit = n
		case key == "offset" && paged:
			n, err := strconv.Atoi(val)
			if !digits.MatchString(val) || err != nil || n > 1<<31 {
				fail(key, "must be a whole number from 0 to 2147483648")
				return
			}
			page.Offset = n
		case more[key] != nil:
			if msg := more[key](val); msg != "" {
				fail(key, msg)
			}
		default:
			fail(key, "is not a known query parameter")
		}
	})
	if len(details) > 0 {
		return page, validationError(details...)
	}
	return page, nil
}
