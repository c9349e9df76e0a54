package telemetry

import (
	"encoding/hex"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/timefmt"
)

// appendStateEvent appends a gateway.state event's data: the JSON that
// encoding/json makes of stateEvent, byte for byte.
//
// Every state change of every gateway is published from the supervisor's
// turn, one actor for the whole fleet, so what it costs bounds how fast
// a storm of changes gets through. json.Marshal, with its reflection and
// allocations, was 3.8 % of gatewayd's CPU in the gateway create storm
// (BENCHMARKS.md, 2026-12-06 third session).
func appendStateEvent(b []byte, st gatewayd.Status, from gatewayd.State) []byte {
	b = append(b, `{"id":"`...)
	b = appendUUID(b, st.ID)
	b = append(b, `","factory_id":"`...)
	b = appendUUID(b, st.FactoryID)
	b = append(b, `","gateway_id":`...)
	b = appendString(b, st.GatewayID)
	b = append(b, `,"name":`...)
	b = appendString(b, st.Name)
	b = append(b, `,"from":`...)
	if from == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, string(from))
	}
	b = append(b, `,"to":`...)
	b = appendString(b, string(st.State))
	b = append(b, `,"at":"`...)
	b = timefmt.Append(b, st.Since)
	b = append(b, `","last_error":`...)
	if st.LastError == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *st.LastError)
	}
	return append(b, '}')
}

// appendUUID appends u in its canonical form.
func appendUUID(b []byte, u uuid.UUID) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return append(b, buf[:]...)
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it by default: HTML's <, > and & escaped, invalid UTF-8 as U+FFFD, and
// U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// stateEventSize is room for a typical event's data, so that one
// allocation holds it.
const stateEventSize = 384
