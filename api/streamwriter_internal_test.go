package api

import (
	"bufio"
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README (EVENTS_CLIENT_BUFFER): a stream holds its 32 KiB write buffer
// only while it has something to send. A stream writer takes a buffer at
// its first write, gives it back at the flush that empties it, and a run
// of writes and flushes reuses the pool's buffers rather than making one
// per flush. Would catch: a buffer held between flushes (every idle
// stream kept 32 KiB); a buffer made per flush.
func TestAStreamHoldsItsBufferOnlyWhileItHasSomethingToSend(t *testing.T) {
	var made atomic.Int64
	pool := &sync.Pool{New: func() any {
		made.Add(1)
		return bufio.NewWriterSize(nil, streamBufferSize)
	}}
	var out bytes.Buffer
	w := newStreamWriter(&out, pool)
	assert.Nil(t, w.w, "nothing held before the first write")
	for i := range 100 {
		_, err := w.buf().WriteString("x")
		require.NoError(t, err)
		assert.NotNil(t, w.w, "held while it has something to send")
		require.NoError(t, w.flush())
		assert.Nil(t, w.w, "given back by the flush, round %d", i)
	}
	assert.Equal(t, bytes.Repeat([]byte("x"), 100), out.Bytes())
	assert.Less(t, made.Load(), int64(50), "buffers are reused from the pool")
	require.NoError(t, w.flush(), "a flush with nothing held is nothing")
}

// A flush that fails keeps its error and its buffer (never pooled: it
// holds unsent bytes): later writes and flushes fail too, as with one
// bufio.Writer. Would catch: a failed buffer put back in the pool, or a
// failure forgotten by the next flush.
func TestAFailedStreamFlushStaysFailed(t *testing.T) {
	pool := &sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64) }}
	boom := errors.New("boom")
	w := newStreamWriter(failWriter{boom}, pool)
	_, _ = w.buf().WriteString("x")
	require.ErrorIs(t, w.flush(), boom)
	_, err := w.buf().WriteString("y")
	assert.ErrorIs(t, err, boom, "a write after the failure fails")
	assert.ErrorIs(t, w.flush(), boom, "and so does the next flush")
	held := w.w
	w.release()
	assert.Same(t, held, w.w, "the failed buffer is not given back")
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
