package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README (EVENTS_CLIENT_BUFFER): a stream holds its 32 KiB write buffer
// only while it has something to send. A stream writer takes a buffer at
// its first write and gives it back at the flush that empties it, and a
// run of writes and flushes reuses that one buffer, collections or not.
// Would catch: a buffer held between flushes (every idle stream kept
// 32 KiB); a buffer made per flush (a sync.Pool's, dropped at every
// collection, made the streams of a storm cost twice the CPU).
func TestAStreamHoldsItsBufferOnlyWhileItHasSomethingToSend(t *testing.T) {
	pool := newWriterPool(streamBufferSize, 2)
	var out bytes.Buffer
	w := newStreamWriter(&out, pool)
	assert.Nil(t, w.w, "nothing held before the first write")
	first := w.buf()
	for i := range 100 {
		_, err := w.buf().WriteString("x")
		require.NoError(t, err)
		assert.Same(t, first, w.w, "the pool's one buffer, round %d", i)
		require.NoError(t, w.flush())
		assert.Nil(t, w.w, "given back by the flush, round %d", i)
		assert.Len(t, pool.idle, 1)
	}
	assert.Equal(t, bytes.Repeat([]byte("x"), 100), out.Bytes())
	require.NoError(t, w.flush(), "a flush with nothing held is nothing")
}

// The pool keeps at most keep idle buffers.
func TestTheStreamBufferPoolKeepsAtMostItsShare(t *testing.T) {
	pool := newWriterPool(64, 2)
	a, b, c := pool.get(), pool.get(), pool.get()
	pool.put(a)
	pool.put(b)
	pool.put(c)
	assert.Len(t, pool.idle, 2)
	assert.Same(t, b, pool.get(), "last in, first out")
}

// A flush that fails keeps its error and its buffer (never pooled: it
// holds unsent bytes): later writes and flushes fail too, as with one
// bufio.Writer. Would catch: a failed buffer put back in the pool, or a
// failure forgotten by the next flush.
func TestAFailedStreamFlushStaysFailed(t *testing.T) {
	pool := newWriterPool(64, 2)
	boom := errors.New("boom")
	w := newStreamWriter(failWriter{boom}, pool)
	_, _ = w.buf().WriteString("x")
	require.ErrorIs(t, w.flush(), boom)
	_, err := w.buf().WriteString(string(make([]byte, 100))) // past the buffer: a write to the socket
	assert.ErrorIs(t, err, boom, "a write after the failure fails")
	assert.ErrorIs(t, w.flush(), boom, "and so does the next flush")
	held := w.w
	w.release()
	assert.Same(t, held, w.w, "the failed buffer is not given back")
	assert.Empty(t, pool.idle)
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
