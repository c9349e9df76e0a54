package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
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

// isJSON says whether a Content-Type is application/json (parameters
// such as charset are fine).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == fiber.MIMEApplicationJSON
}

// jsonBodiesOnly answers 415 to any request that carries a body that is
// not JSON, on every route, before anything reads that body.
func jsonBodiesOnly(c *fiber.Ctx) error {
	if len(c.Request().Body()) > 0 && !isJSON(c.Get(fiber.HeaderContentType)) {
		return fiber.ErrUnsupportedMediaType
	}
	return c.Next()
}

// parseBody checks the media type and reads a JSON object.
func parseBody(c *fiber.Ctx) (*body, error) {
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return nil, fiber.ErrUnsupportedMediaType
	}
	raw := c.Body()
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, validationError(Detail{Field: "body", Message: "is required"})
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
	if dec.More() {
		return nil, validationError(Detail{Field: "body", Message: "must hold exactly one JSON value"})
	}
	return &body{fields: fields, seen: make(map[string]bool, len(fields))}, nil
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
	return s, true
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
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		b.fail(name, "must be a JSON object")
		return nil, false
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes())), true
}

func checkJSON(v any, depth int) string {
	if depth > maxMetadataDepth {
		return fmt.Sprintf("must not be nested deeper than %d levels", maxMetadataDepth)
	}
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return "must not contain NUL characters"
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) {
				return "must not contain NUL characters"
			}
			if msg := checkJSON(e, depth+1); msg != "" {
				return msg
			}
		}
	case []any:
		for _, e := range x {
			if msg := checkJSON(e, depth+1); msg != "" {
				return msg
			}
		}
	}
	return ""
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
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil {
		b.fail("url", "must be a ws:// or wss:// URL with a host")
		return "", false
	}
	return s, true
}

func (b *body) email(required bool) (string, bool) {
	s, ok := b.str("email", required, 1, 255)
	if !ok {
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
	if s == "Local" || strings.ContainsAny(s, `\`) || strings.HasPrefix(s, "/") || strings.Contains(s, "..") {
		b.fail("timezone", "must be an IANA time zone name such as Europe/Berlin")
		return "", false
	}
	if _, err := time.LoadLocation(s); err != nil {
		b.fail("timezone", "must be an IANA time zone name such as Europe/Berlin")
		return "", false
	}
	return s, true
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

var digits = regexp.MustCompile(`^[0-9]+$`)

// listQuery parses limit, offset and the allowed UUID filters; anything
// else in the query string is an error, so a typo is never ignored.
func listQuery(c *fiber.Ctx, filters ...string) (store.Page, map[string]*uuid.UUID, error) {
	found := make(map[string]*uuid.UUID, len(filters))
	more := make(map[string]func(string) string, len(filters))
	for _, f := range filters {
		more[f] = func(val string) string {
			id, err := parseUUID(val)
			if err != nil {
				return "must be a UUID"
			}
			found[f] = &id
			return ""
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
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		key, val := string(k), string(v)
		counts[key]++
		if counts[key] == 2 {
			details = append(details, Detail{Field: key, Message: "must be given once"})
		}
		if counts[key] > 1 {
			return
		}
		switch {
		case key == "limit" && paged:
			n, err := strconv.Atoi(val)
			if !digits.MatchString(val) || err != nil || n < 1 || n > 100 {
				details = append(details, Detail{Field: key, Message: "must be a whole number from 1 to 100"})
				return
			}
			page.Limit = n
		case key == "offset" && paged:
			n, err := strconv.Atoi(val)
			if !digits.MatchString(val) || err != nil || n > 1<<31 {
				details = append(details, Detail{Field: key, Message: "must be a whole number from 0"})
				return
			}
			page.Offset = n
		case more[key] != nil:
			if msg := more[key](val); msg != "" {
				details = append(details, Detail{Field: key, Message: msg})
			}
		default:
			details = append(details, Detail{Field: key, Message: "is not a known query parameter"})
		}
	})
	if len(details) > 0 {
		return page, validationError(details...)
	}
	return page, nil
}
