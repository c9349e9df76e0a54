package events

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// write runs f against a bufio.Writer and returns the flushed bytes.
func write(t *testing.T, f func(*bufio.Writer) error) (string, error) {
	t.Helper()
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	err := f(w)
	require.NoError(t, w.Flush())
	return out.String(), err
}

func TestWriteSSEBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event Event
		want  string
	}{
		{
			"event",
			Event{ID: 42, Type: TypeGatewayState, Data: []byte(`{"id":"g","from":"CONNECTING","to":"AUTHENTICATED"}`)},
			"id: 42\nevent: gateway.state\ndata: {\"id\":\"g\",\"from\":\"CONNECTING\",\"to\":\"AUTHENTICATED\"}\n\n",
		},
		{
			"empty data is an empty object",
			Event{ID: 18446744073709551615, Type: TypeGatewayDeleted},
			"id: 18446744073709551615\nevent: gateway.deleted\ndata: {}\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := write(t, func(w *bufio.Writer) error { return WriteSSE(w, tt.event) })
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWriteSSERefusesWhatIsNotOneLine(t *testing.T) {
	t.Parallel()
	for _, e := range []Event{
		{ID: 1, Type: TypeGatewayState, Data: []byte("{\"a\":1}\n\nevent: forged\ndata: {}")},
		{ID: 1, Type: TypeGatewayState, Data: []byte("{\r}")},
		{ID: 1, Type: "gateway.state\nevent: forged", Data: []byte("{}")},
	} {
		got, err := write(t, func(w *bufio.Writer) error { return WriteSSE(w, e) })
		require.ErrorIs(t, err, ErrInvalidEvent)
		assert.Empty(t, got, "nothing of it is written")
	}
}

func TestControlFrameBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(*bufio.Writer) error
		want  string
	}{
		{"keep-alive", WriteKeepAlive, ": keep-alive\n\n"},
		{"reset", WriteReset, "event: reset\ndata: {}\n\n"},
		{"overflow", WriteOverflow, "event: overflow\ndata: {}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := write(t, tt.write)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriteSSEReportsTheWritersError(t *testing.T) {
	t.Parallel()
	gone := errors.New("client gone")
	w := bufio.NewWriterSize(failingWriter{gone}, 16) // the event does not fit
	err := WriteSSE(w, Event{ID: 7, Type: TypeReadingCompleted, Data: []byte(`{"id":"0123456789abcdef"}`)})
	assert.ErrorIs(t, err, gone)
	assert.ErrorIs(t, WriteKeepAlive(w), gone)
}

func TestWriteSSEAfterAFullBuffer(t *testing.T) {
	t.Parallel()
	// A small buffer that is nearly full: AvailableBuffer has too little
	// room, and the frame must still come out whole.
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 16)
	_, err := w.WriteString("0123456789abc")
	require.NoError(t, err)
	require.NoError(t, WriteSSE(w, Event{ID: 123456, Type: TypeSensorUpdated, Data: []byte(`{"id":"s","gateway_id":"g"}`)}))
	require.NoError(t, w.Flush())
	assert.Equal(t, "0123456789abcid: 123456\nevent: sensor.updated\ndata: {\"id\":\"s\",\"gateway_id\":\"g\"}\n\n", out.String())
}

// A published event carries its frame, encoded once by Publish; written,
// it is exactly what WriteSSE formats for the same id, type and data, the
// largest ids included, and its Data is still the publisher's.
func TestPublishedFrameIsTheFormattedEvent(t *testing.T) {
	t.Parallel()
	for _, after := range []uint64{0, 9, 99_999, 1<<64 - 4} { // the last reaches 2^64-1
		b := NewBrokerAfter(4, after)
		s := b.Subscribe(Filter{}, 0, 4)
		for _, data := range []string{`{"id":"g","to":"AUTHENTICATED"}`, "", `{}`} {
			var in []byte
			if data != "" {
				in = []byte(data)
			}
			_, err := b.Publish(Event{Type: TypeGatewayState, Data: in})
			require.NoError(t, err)
			e := s.Next()
			require.NotNil(t, e)
			require.NotNil(t, e.frame)
			assert.Equal(t, data, string(e.Data))

			got, err := write(t, func(w *bufio.Writer) error { return WriteSSE(w, *e) })
			require.NoError(t, err)
			want, err := write(t, func(w *bufio.Writer) error {
				return WriteSSE(w, Event{ID: e.ID, Type: e.Type, Data: e.Data})
			})
			require.NoError(t, err)
			assert.Equal(t, want, got, "id %d", e.ID)
		}
		b.Close()
	}
}
