// Package logging builds the process's zerolog logger from configuration.
package logging

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd/internal/timefmt"
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
	// Every line has one: written without time.Format's allocation
	// (timefmt.Append).
	var buf [timefmt.Len]byte
	e.Bytes(zerolog.TimestampFieldName, timefmt.Append(buf[:0], time.Now()))
})

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

// APIStarting is logged, with "addr", when the port is bound and answers
// health (and 503 elsewhere) while gatewayd starts; APIListening follows
// once the API proper serves.
const APIStarting = "API port bound; answering health while starting"

// StandbyWaits is logged by the running process when another gatewayd on
// its database waits to take over: from then on, losing the instance
// lock's connection without taking the lock again at once stops it.
const StandbyWaits = "another gatewayd waits to take over; losing the database now stops this one, so that it can"

// Listening reports whether JSON log output holds gatewayd's APIListening
// line for addr ("127.0.0.1:3000"). Only that line proves the port is
// gatewayd's: a port picked free a moment before may be taken by someone
// else by the time gatewayd binds it, and that someone may answer HTTP too.
func Listening(logs, addr string) bool { return LoggedAt(logs, APIListening, addr) }

// LoggedAt reports whether JSON log output holds a line of message with
// addr ("127.0.0.1:3000") in "addr".
func LoggedAt(logs, message, addr string) bool {
	want := `"addr":"` + addr + `"`
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"message":"`+message+`"`) && strings.Contains(line, want) {
			return true
		}
	}
	return false
}
