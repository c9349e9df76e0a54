// Package logging builds the process's zerolog logger from configuration.
package logging

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// ConsoleTime is the console format's timestamp: local time with
// milliseconds, since gateway events a few ms apart must stay in order.
const ConsoleTime = "2006-01-02T15:04:05.000Z07:00"

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error"; anything else means info) as JSON, or human-readable when format
// is "console", in colour only when color is true (see Color). The level
// is set on the logger, never globally, so tests with several loggers do
// not interfere.
func New(w io.Writer, level, format string, color bool) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || lvl == zerolog.NoLevel {
		lvl = zerolog.InfoLevel
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: ConsoleTime, NoColor: !color}
	}
	// zerolog's own timestamp follows the package-wide TimeFieldFormat
	// (whole seconds); this one carries milliseconds in JSON and console
	// alike without touching that global.
	return zerolog.New(w).Level(lvl).Hook(timestamp)
}

// timestamp writes the event's time, UTC with milliseconds.
var timestamp = zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
	var buf [len("2006-01-02T15:04:05.000Z")]byte
	e.Bytes(zerolog.TimestampFieldName, appendTimestamp(buf[:0], time.Now()))
})

// appendTimestamp appends t as TimeFormat renders it in UTC. Every log
// line has one (each request's access line, each state change), and
// time.Format, which reads its layout anew each time and returns a new
// string, was 3-4 % of gatewayd's CPU under load (BENCHMARKS.md,
// 2026-12-06 third session).
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeFormat)
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

// TimeFormat is the JSON timestamp: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Color says whether console output to out may use colour: only on a
// terminal, and never when NO_COLOR is set to anything (no-color.org).
func Color(out io.Writer, environ []string) bool {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "NO_COLOR="); ok && v != "" {
			return false
		}
	}
	f, ok := out.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// APIListening is the message gatewayd logs, with the address in "addr",
// once its API listens. Tools that start gatewayd wait for it (Listening).
const APIListening = "API listening"

// Listening reports whether JSON log output holds gatewayd's APIListening
// line for addr ("127.0.0.1:3000"). Only that line proves the port is
// gatewayd's: a port picked free a moment before may be taken by someone
// else by the time gatewayd binds it, and that someone may answer HTTP too.
func Listening(logs, addr string) bool {
	want := `"addr":"` + addr + `"`
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"message":"`+APIListening+`"`) && strings.Contains(line, want) {
			return true
		}
	}
	return false
}
