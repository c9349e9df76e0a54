package netutil

import (
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// fakeListener fails its first n Accepts with err, then hands out conn.
type fakeListener struct {
	mu     sync.Mutex
	err    error
	n      int // failures left; negative: fail forever
	calls  int
	conn   net.Conn
	closed bool
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.closed {
		return nil, net.ErrClosed
	}
	if f.n != 0 {
		f.n--
		return nil, f.err
	}
	return f.conn, nil
}

func (f *fakeListener) Close() error   { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }
func (f *fakeListener) Calls() int     { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func TestAcceptRetriesWhenOutOfDescriptors(t *testing.T) {
	t.Parallel()
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	logs := &testutil.SyncBuffer{}
	f := &fakeListener{err: emfile(), n: 4, conn: c1}
	l := RetryAccept(f, zerolog.New(logs))
	start := time.Now()
	c, err := l.Accept()
	require.NoError(t, err)
	assert.Same(t, c1, c)
	assert.Equal(t, 5, f.Calls())
	assert.GreaterOrEqual(t, time.Since(start), (5+10+20+40)*time.Millisecond, "backs off 5 ms, doubling")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 1, "one line a second at most: %s", logs)
	assert.Contains(t, lines[0], "too many open files")
	assert.Contains(t, lines[0], `"failures":1`)
}

func TestAcceptGivesUpOnlyOnPermanentErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	l := RetryAccept(&fakeListener{err: boom, n: -1}, zerolog.Nop())
	_, err := l.Accept()
	assert.ErrorIs(t, err, boom)

	f := &fakeListener{err: net.ErrClosed, n: -1}
	_, err = RetryAccept(f, zerolog.Nop()).Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Equal(t, 1, f.Calls())

	// A deadline the owner set ends the accepts, timeout or not.
	deadline := &net.OpError{Op: "accept", Net: "tcp", Err: os.ErrDeadlineExceeded}
	require.True(t, deadline.Temporary(), "Go calls it temporary")
	f = &fakeListener{err: deadline, n: -1}
	_, err = RetryAccept(f, zerolog.Nop()).Accept()
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Equal(t, 1, f.Calls())
}

func TestCloseEndsABackoff(t *testing.T) {
	t.Parallel()
	logs := &testutil.SyncBuffer{}
	f := &fakeListener{err: emfile(), n: -1}
	l := RetryAccept(f, zerolog.New(logs))
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	// Eight failures: the backoff is past 600 ms by then.
	require.Eventually(t, func() bool { return f.Calls() >= 8 }, 5*time.Second, time.Millisecond)
	closedAt := time.Now()
	require.NoError(t, l.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.Less(t, time.Since(closedAt), 300*time.Millisecond, "not after the backoff")
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	// At most one line a second, and the first failure is one.
	assert.LessOrEqual(t, strings.Count(logs.String(), "\n"), 2)
}
