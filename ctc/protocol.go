// Package ctc is the CTC Connect Wireless gateway protocol: JSON text
// frames over WebSocket, requests from "UI" to "SERV", answers and
// notifications back. It holds the message types, a codec that never writes
// a CorrelationId (real gateways fail on one), a decoder that tolerates
// anything a gateway sends, and a first-in first-out matcher for answers,
// which carry no correlation id.
package ctc

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Message types seen on real gateways.
const (
	TypePostLogin            = "POST_LOGIN"
	TypeGetDynConnected      = "GET_DYN_CONNECTED"
	TypePostSubChanges       = "POST_SUB_CHANGES"
	TypePostUnsubChanges     = "POST_UNSUB_CHANGES"
	TypeTakeDynReading       = "TAKE_DYN_READING"
	TypeRtnLogin             = "RTN_LOGIN"
	TypeRtnDyn               = "RTN_DYN"
	TypeRtnErr               = "RTN_ERR"
	TypeNotDynReadingStarted = "NOT_DYN_READING_STARTED"
	TypeNotDynReading        = "NOT_DYN_READING"
	TypeNotDynTemp           = "NOT_DYN_TEMP"
)

// Request is a frame from the client ("UI") to the gateway ("SERV"). It has
// no CorrelationId field on purpose.
type Request struct {
	Type string `json:"Type"`
	From string `json:"From"`
	To   string `json:"To"`
	Data any    `json:"Data"`
}

// Login is POST_LOGIN's data.
type Login struct {
	Email    string `json:"Email"`
	Password string `json:"Password"`
}

// TakeReading is TAKE_DYN_READING's data.
type TakeReading struct {
	Serial int64 `json:"Serial"`
}

// Encode builds a request frame. A nil data is sent as {}. Strings go as
// they are, without encoding/json's HTML escaping: a password "p<&>w" went
// out as "p\u003c\u0026\u003ew", valid JSON that a firmware's parser need
// not read back as the password.
func Encode(typ string, data any) ([]byte, error) {
	if data == nil {
		data = struct{}{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Request{Type: typ, From: "UI", To: "SERV", Data: data}); err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Message is a decoded frame from a gateway: one of *LoginResult,
// *ErrorResult, *DynResult, *ReadingStarted, *Reading, *Temperature or
// *Unknown.
type Message interface {
	MessageType() string
}

// IsAnswer says whether a message answers a request (RTN_*), as opposed to
// a notification or an unknown frame.
func IsAnswer(m Message) bool {
	switch m.(type) {
	case *LoginResult, *ErrorResult, *DynResult:
		return true
	}
	return false
}

// LoginResult is RTN_LOGIN. Only Success decides anything; the other
// fields take any scalar, so an odd one (a number for a name) does not
// cost the answer: it was dropped as malformed, and the login waited out
// its timeout and was retried, refused credentials included.
type LoginResult struct {
	Email       Text   `json:"Email"`
	First       Text   `json:"First"`
	Last        Text   `json:"Last"`
	Success     Flag   `json:"Success"`
	AccessLevel Scalar `json:"AccessLevel"`
	Verified    Scalar `json:"Verified"`
}

// ErrorResult is RTN_ERR. Attempt is a string or null on the gateways
// seen so far; anything is taken. A Data that is a bare string is the
// Error.
type ErrorResult struct {
	Attempt Scalar `json:"Attempt"`
	Error   Text   `json:"Error"`
}

// DynResult is RTN_DYN; its data depends on the request it answers.
type DynResult struct {
	Data json.RawMessage
}

// ReadingStarted is NOT_DYN_READING_STARTED, read leniently as the
// other frames are (README: numbers may come as strings, booleans as
// 0/1): a strict Success or Serial dropped the frame, and the reading
// waited out READING_START_TIMEOUT.
type ReadingStarted struct {
	Serial  Text `json:"Serial"`
	Success Flag `json:"Success"`
	Error   Text `json:"Error,omitempty"` // why, when Success is false (some firmware)
}

// Reading is NOT_DYN_READING; axis samples come as strings, the serial
// as a string or a number.
type Reading struct {
	ID     Scalar `json:"ID"`
	Serial Text   `json:"Serial"`
	Time   string `json:"Time"`
	X      string `json:"X"`
	Y      string `json:"Y"`
	Z      string `json:"Z"`
}

// Temperature is NOT_DYN_TEMP. Serial is a string on the gateways seen
// so far (NOT_DYN_READING_STARTED's is a number); either is taken.
type Temperature struct {
	Serial Text   `json:"Serial"`
	Temp   Scalar `json:"Temp"`
}

// Unknown is a well-formed frame of a type this package does not know.
type Unknown struct {
	Type string
	Data json.RawMessage
}

func (*LoginResult) MessageType() string    { return TypeRtnLogin }
func (*ErrorResult) MessageType() string    { return TypeRtnErr }
func (*DynResult) MessageType() string      { return TypeRtnDyn }
func (*ReadingStarted) MessageType() string { return TypeNotDynReadingStarted }
func (*Reading) MessageType() string        { return TypeNotDynReading }
func (*Temperature) MessageType() string    { return TypeNotDynTemp }
func (u *Unknown) MessageType() string      { return u.Type }

// ErrMalformed wraps every decode failure.
var ErrMalformed = errors.New("ctc: malformed frame")

type envelope struct {
	Type   *string         `json:"Type"`
	From   string          `json:"From"`
	Target string          `json:"Target"`
	Data   json.RawMessage `json:"Data"`
}

// readingEnvelope is a NOT_DYN_READING decoded in one pass: envelope's
// fields, with Data straight into a Reading.
type readingEnvelope struct {
	Type   *string  `json:"Type"`
	From   string   `json:"From"`
	Target string   `json:"Target"`
	Data   *Reading `json:"Data"`
}

// Decode parses one frame from a gateway. It never panics: a frame that is
// not a JSON object with a string Type, or whose Data does not fit its
// Type, is an ErrMalformed error; an unknown Type is an *Unknown.
func Decode(frame []byte) (Message, error) {
	if r, ok := decodeReading(frame, false); ok {
		return r, nil
	}
	return decodeEnvelope(frame)
}

// DecodeInPlace is Decode for a caller that keeps frame unchanged for as
// long as it uses the message: the X, Y and Z of a NOT_DYN_READING then
// point into frame instead of being copied (~200 KB a reading, two thirds
// of what gatewayd allocated in a burst of readings). inPlace reports that
// they do; every other message, and a reading that needs encoding/json,
// is a copy as from Decode.
func DecodeInPlace(frame []byte) (m Message, inPlace bool, err error) {
	if r, ok := decodeReading(frame, true); ok {
		return r, true, nil
	}
	m, err = decodeEnvelope(frame)
	return m, false, err
}

// decodeReading decodes a frame that is plainly a NOT_DYN_READING in one
// json.Unmarshal. Such a frame carries ~200 KB of samples, and going
// through the envelope reads them four times (validate, skip into the
// RawMessage, validate again, unquote), which was half of gatewayd's CPU
// in a burst of readings (BENCHMARKS.md, issue #14); one pass takes 2.8 ms
// and 214 KB a CSV frame instead of 5.8 ms and 427 KB
// (BenchmarkDecodeReadingFrame in ctctest). It answers only when decodeEnvelope would answer the same: no
// backslash (so no key is escaped), at most one key folding to "data" (no
// duplicate Data, which the envelope takes whole from the last and this
// would merge), Type NOT_DYN_READING and no error; otherwise !ok, and the
// envelope decides.
//
// With inPlace, a reading read by the scanner has X, Y and Z pointing into
// frame; one read by encoding/json never has (and !ok is then reported,
// so that the caller knows it holds copies).
func decodeReading(frame []byte, inPlace bool) (*Reading, bool) {
	if !bytes.Contains(frame, []byte(`"NOT_DYN_READING"`)) || bytes.IndexByte(frame, '\\') >= 0 || quotedDataKeys(frame) > 1 {
		return nil, false
	}
	if r, ok := scanReading(frame, inPlace); ok {
		return r, true
	}
	if inPlace {
		return nil, false // the envelope decodes it, as copies
	}
	var env readingEnvelope
	if err := json.Unmarshal(frame, &env); err != nil || env.Type == nil || *env.Type != TypeNotDynReading {
		return nil, false
	}
	if env.Data == nil {
		return &Reading{}, true // Data null or absent, as decodeEnvelope
	}
	return env.Data, true
}

// quotedDataKeys counts "data" in any case, quotes included: every key
// encoding/json would match to Data, in a frame without escapes (and the
// odd string value that reads the same, which only sends the frame the
// slow way).
func quotedDataKeys(frame []byte) int {
	n := 0
	for i := 0; ; i++ {
		j := bytes.IndexByte(frame[i:], '"')
		if j < 0 {
			return n
		}
		i += j
		if i+6 <= len(frame) && frame[i+5] == '"' && bytes.EqualFold(frame[i+1:i+5], []byte("data")) {
			n++
		}
	}
}

// decodeEnvelope decodes any frame: its envelope, then Data by Type.
func decodeEnvelope(frame []byte) (Message, error) {
	var env envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.Type == nil {
		return nil, fmt.Errorf("%w: no Type", ErrMalformed)
	}
	var m Message
	switch *env.Type {
	case TypeRtnLogin:
		m = &LoginResult{}
	case TypeRtnErr:
		m = &ErrorResult{}
	case TypeRtnDyn:
		return &DynResult{Data: env.Data}, nil
	case TypeNotDynReadingStarted:
		m = &ReadingStarted{}
	case TypeNotDynReading:
		m = &Reading{}
	case TypeNotDynTemp:
		m = &Temperature{}
	default:
		return &Unknown{Type: *env.Type, Data: env.Data}, nil
	}
	if e, ok := m.(*ErrorResult); ok && len(env.Data) > 0 && env.Data[0] == '"' {
		if err := json.Unmarshal(env.Data, &e.Error); err != nil {
			return nil, fmt.Errorf("%w: %s data: %v", ErrMalformed, *env.Type, err)
		}
		return m, nil
	}
	if len(env.Data) > 0 && !bytes.Equal(env.Data, []byte("null")) {
		if err := json.Unmarshal(env.Data, m); err != nil {
			return nil, fmt.Errorf("%w: %s data: %v", ErrMalformed, *env.Type, err)
		}
	}
	return m, nil
}

// LoginOutcome interprets the answer to POST_LOGIN: accepted, or refused
// with the gateway's reason. RTN_DYN counts as success (some firmware
// answers that way).
func LoginOutcome(m Message) (accepted bool, reason string) {
	switch v := m.(type) {
	case *LoginResult:
		if v.Success {
			return true, ""
		}
		return false, "login refused"
	case *DynResult:
		return true, ""
	case *ErrorResult:
		if strings.TrimSpace(string(v.Error)) == "" {
			return false, "login refused"
		}
		return false, string(v.Error)
	}
	return false, "unexpected answer to login: " + m.MessageType()
}

// Sensor is one entry of GET_DYN_CONNECTED's answer, as the simulator
// (ctctest) writes it.
type Sensor struct {
	Serial    int64   `json:"Serial"`
	Connected int     `json:"Connected"`
	PartNum   string  `json:"PartNum"`
	ReadRate  float64 `json:"ReadRate"`
	Samples   int     `json:"Samples"`
	Name      string  `json:"Name"`
}

// Listed is a sensor as a gateway listed it, read leniently: a field left
// out, or sent in a form that reads as nothing of its kind, is nil (or
// its zero value), and the rest of the entry and of the list still count.
type Listed struct {
	Serial int64
	// Connected is true when the entry says so (1, true, "1", "true") or
	// says nothing: the list is of the connected sensors.
	Connected bool
	PartNum   string
	ReadRate  *float64
	Samples   *int64
	Name      string
}

// listEntry is an entry of the list as sent: numbers may come as strings,
// Connected as 0/1 or a boolean.
type listEntry struct {
	Serial    Text `json:"Serial"`
	Connected Text `json:"Connected"`
	PartNum   Text `json:"PartNum"`
	ReadRate  Text `json:"ReadRate"`
	Samples   Text `json:"Samples"`
	Name      Text `json:"Name"`
}

// Sensors decodes the sensor list: an object keyed by serial, or [] when
// there are none (API.md §6). Entries are read one by one: one that is
// not an object, or whose serial cannot be read (from its Serial, else
// its key), is skipped and counted, and the others still count; a single odd field once cost the
// whole list. A Data that is no list (absent, null, a string, {} or an
// object none of whose entries is a sensor) is ErrMalformed: a gateway
// with no sensors says [], and an RTN_DYN with nothing in it is more
// likely the late answer of another request than an empty list, which
// would disconnect every sensor.
func Sensors(data json.RawMessage) (list []Listed, skipped int, err error) {
	list, skipped, _, err = SensorsUpTo(data, math.MaxInt)
	return list, skipped, err
}

// SensorsUpTo is Sensors keeping the limit lowest serials of the list
// (sorted by serial; of entries with one serial, the later last), and
// counting the other readable entries as dropped. The list is read entry
// by entry and only what is kept stays: decoded whole (a map of every
// entry, then every entry decoded, then the list), a 4 MiB list of
// ~315,000 entries held ~170 MiB on its gateway's actor before all but
// 4,096 were dropped, and three such gateways half a GiB (found by an
// audit, helper 5). A key given twice is two entries, where a map kept
// the last: the merge takes the later of one serial's entries, as a map
// did.
func SensorsUpTo(data json.RawMessage, limit int) (list []Listed, skipped, dropped int, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, 0, 0, fmt.Errorf("%w: sensors: no list", ErrMalformed)
	}
	if trimmed[0] != '[' && trimmed[0] != '{' {
		return nil, 0, 0, fmt.Errorf("%w: sensors: not a list", ErrMalformed)
	}
	keep := lowest{limit: max(0, limit)}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // [ or {
		return nil, 0, 0, fmt.Errorf("%w: sensors: %v", ErrMalformed, err)
	}
	byKey, entries := trimmed[0] == '{', 0
	for dec.More() {
		key := ""
		if byKey {
			t, err := dec.Token()
			if err != nil {
				return nil, 0, 0, fmt.Errorf("%w: sensors: %v", ErrMalformed, err)
			}
			key, _ = t.(string)
		}
		entries++
		var e listEntry
		if err := dec.Decode(&e); err != nil {
			var typeErr *json.UnmarshalTypeError
			if !errors.As(err, &typeErr) {
				return nil, 0, 0, fmt.Errorf("%w: sensors: %v", ErrMalformed, err)
			}
			skipped++ // not an object; the decoder has read past it
			continue
		}
		l, ok := e.listed(key)
		if !ok {
			skipped++
			continue
		}
		keep.add(l)
	}
	if _, err := dec.Token(); err != nil { // ] or }
		return nil, 0, 0, fmt.Errorf("%w: sensors: %v", ErrMalformed, err)
	}
	if dec.InputOffset() != int64(len(trimmed)) {
		return nil, 0, 0, fmt.Errorf("%w: sensors: data after the list", ErrMalformed)
	}
	if byKey && entries == 0 {
		return nil, 0, 0, fmt.Errorf("%w: sensors: {} is no list ([] is none)", ErrMalformed)
	}
	list = keep.sorted()
	if len(list) == 0 && skipped > 0 {
		return nil, skipped, 0, fmt.Errorf("%w: sensors: no entry has a serial", ErrMalformed)
	}
	return list, skipped, keep.dropped, nil
}

// listed is the entry as a sensor, its serial read from its Serial, else
// from key; false if neither is one.
func (e listEntry) listed(key string) (Listed, bool) {
	serial, ok := e.Serial.Int64()
	if !ok || serial == 0 {
		// No serial, or 0 (a placeholder some firmware writes): the
		// key's, if it is one.
		if k, kok := Text(key).Int64(); kok {
			serial, ok = k, true
		}
	}
	if !ok {
		return Listed{}, false
	}
	l := Listed{Serial: serial, Connected: true, PartNum: string(e.PartNum), Name: string(e.Name)}
	if c, ok := e.Connected.Bool(); ok {
		l.Connected = c
	}
	if r, ok := e.ReadRate.Float(); ok {
		l.ReadRate = &r
	}
	if n, ok := e.Samples.Int64(); ok {
		l.Samples = &n
	}
	return l, true
}

// lowest keeps the limit entries of lowest serial seen, in a max-heap by
// (serial, arrival), and counts the rest.
type lowest struct {
	limit   int
	seq     int
	heap    []seqListed
	dropped int
}

type seqListed struct {
	Listed
	seq int
}

func (k *lowest) after(i, j int) bool { // i should be nearer the top than j
	a, b := k.heap[i], k.heap[j]
	return a.Serial > b.Serial || a.Serial == b.Serial && a.seq > b.seq
}

func (k *lowest) add(l Listed) {
	k.seq++
	e := seqListed{l, k.seq}
	switch {
	case len(k.heap) < k.limit:
		k.heap = append(k.heap, e)
		for i := len(k.heap) - 1; i > 0; { // up
			p := (i - 1) / 2
			if !k.after(i, p) {
				break
			}
			k.heap[i], k.heap[p] = k.heap[p], k.heap[i]
			i = p
		}
	case k.limit > 0 && l.Serial < k.heap[0].Serial:
		k.heap[0] = e
		for i := 0; ; { // down
			c := 2*i + 1
			if c >= len(k.heap) {
				break
			}
			if c+1 < len(k.heap) && k.after(c+1, c) {
				c++
			}
			if !k.after(c, i) {
				break
			}
			k.heap[i], k.heap[c] = k.heap[c], k.heap[i]
			i = c
		}
		k.dropped++
	default:
		k.dropped++
	}
}

// sorted is what was kept, by serial, the later of one serial's entries
// last.
func (k *lowest) sorted() []Listed {
	slices.SortFunc(k.heap, func(a, b seqListed) int {
		return cmp.Or(cmp.Compare(a.Serial, b.Serial), cmp.Compare(a.seq, b.seq))
	})
	list := make([]Listed, len(k.heap))
	for i, e := range k.heap {
		list[i] = e.Listed
	}
	return list
}
