package events

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
)

// The fixed SSE frames. Reset and overflow carry "data: {}" because an
// EventSource fires no listener for an event without data. Neither has an
// id: line, so the client keeps the Last-Event-ID of the last real event it
// got, which is exactly where it should resume from.
const (
	keepAliveFrame = ": keep-alive\n\n"
	resetFrame     = "event: reset\ndata: {}\n\n"
	overflowFrame  = "event: overflow\ndata: {}\n\n"
)

// WriteSSE writes e as one Server-Sent Event:
//
//	id: <e.ID>
//	event: <e.Type>
//	data: <e.Data, or {} when empty>
//	<blank line>
//
// An event from a Broker (Next or Replay) carries that frame, encoded once by
// Publish for all its subscribers, and is written with one copy. Any other
// event is formatted here, into the writer's own buffer (it takes a
// *bufio.Writer, what Fiber's stream writer hands out) without allocating.
// The caller flushes. It refuses, writing nothing, an event whose type or
// data is not one line: a newline would split it into a second, forged
// event. Broker never delivers such an event; the check guards events
// built elsewhere.
func WriteSSE(w *bufio.Writer, e Event) error {
	if e.frame != nil {
		_, err := w.Write(e.frame)
		return err
	}
	if !oneLine(e.Type) || bytes.IndexByte(e.Data, '\n') >= 0 || bytes.IndexByte(e.Data, '\r') >= 0 {
		return fmt.Errorf("%w: event %d (%q) is not one line", ErrInvalidEvent, e.ID, e.Type)
	}
	buf := w.AvailableBuffer()
	buf = append(buf, "id: "...)
	buf = strconv.AppendUint(buf, e.ID, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, e.Type...)
	buf = append(buf, "\ndata: "...)
	// A bufio.Writer's error is sticky: once a write fails, every later
	// one returns the same error, so checking the last write is enough.
	_, _ = w.Write(buf)
	if len(e.Data) == 0 {
		_, _ = w.WriteString("{}")
	} else {
		_, _ = w.Write(e.Data)
	}
	_, err := w.WriteString("\n\n")
	return err
}

func oneLine(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return false
		}
	}
	return true
}

// WriteKeepAlive writes the comment ": keep-alive" that the stream sends
// every 15 s so that proxies do not close an idle connection. EventSource
// ignores comments.
func WriteKeepAlive(w *bufio.Writer) error {
	_, err := w.WriteString(keepAliveFrame)
	return err
}

// WriteReset writes "event: reset" with data {}: the stream could not
// resume from the client's Last-Event-ID (see Subscription.Reset), so the
// client must reload its state; the ring's events follow.
func WriteReset(w *bufio.Writer) error {
	_, err := w.WriteString(resetFrame)
	return err
}

// WriteOverflow writes "event: overflow" with data {}, the last frame of a
// stream that fell too far behind (see Subscription.Overflowed). The
// handler then ends the response; EventSource reconnects with its
// Last-Event-ID.
func WriteOverflow(w *bufio.Writer) error {
	_, err := w.WriteString(overflowFrame)
	return err
}
