// Package timefmt writes the one time format gatewayd renders everywhere:
// API bodies, events and log lines carry RFC 3339 in UTC with exactly
// three fraction digits. Every response, event and log line has one or
// more, and time.Format, which reads its layout anew each time and
// returns a new string, was 3-4 % of gatewayd's CPU in profiles of GETs
// by id and of the gateway create storm (BENCHMARKS.md, 2026-12-06 third
// session); Append writes the fixed layout directly.
package timefmt

import "time"

// Layout is the format, as time.Format spells it.
const Layout = "2006-01-02T15:04:05.000Z07:00"

// Len is the length of a rendered time of the years 0-9999.
const Len = len("2006-01-02T15:04:05.000Z")

// Append appends t as Layout renders it in UTC.
func Append(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, Layout)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, ms, 3)
	return append(b, 'Z')
}

// appendDigits appends v (≥ 0) as exactly n decimal digits.
func appendDigits(b []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= len(b)-n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
