// Package duration parses durations the way gatewayd's configuration and
// API spell them: Go's syntax ("500ms", "1h30m") plus days ("90d",
// "1d12h"), since retention and schedules are naturally counted in days.
package duration

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

var errSyntax = errors.New("not a duration")

// Parse reads a duration; a number without a unit is an error.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil || days == "" {
		return 0, errSyntax
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest == "" {
		return d, nil
	}
	more, err := time.ParseDuration(rest)
	if err != nil || more < 0 {
		return 0, errSyntax
	}
	return d + more, nil
}
