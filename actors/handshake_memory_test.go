package actors_test

// (Found by an audit, helper 11, whose test this is.) What a gateway's handshake response may cost.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// README, "What a hostile peer can and cannot do": a gateway "can make
// its own connection fail, and nothing more", "so a flood costs bounded
// memory"; "a handshake that never completes holds one dial slot for at
// most GATEWAY_CONNECT_TIMEOUT". The 101 is read by Go's
// http.ReadResponse (gorilla's), which bounds neither a line nor the
// header: a peer that answers the upgrade with one endless header line
// has gatewayd keep all of it, for the whole connect timeout, before the
// frame meter (which starts after the response) sees a byte.
func TestEndlessHandshakeHeaderCostsBoundedMemory(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	cfg := actorstest.FastConfig()
	cfg.ConnectTimeout = 10 * time.Second // gatewayd's default
	h := actorstest.New(t, tmpl, cfg)
	const total = 96 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var written atomic.Int64
	p := newHandPeer(t, ln, "ws", func(w io.Writer, accept string) error {
		if _, err := io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nX-Padding: "); err != nil {
			return err
		}
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for written.Load() < total {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			written.Add(int64(len(chunk)))
		}
		// Then nothing: the line never ends, until the connect timeout.
		return io.EOF
	}, func(net.Conn, *bufio.Reader, []byte) {})

	var peak, samples atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak.Store(max(peak.Load(), ms.HeapInuse))
			samples.Add(1)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	g := addRawGateway(t, h, "endless-header", p.url)
	// The peer wrote it all (the client read it), or the client gave up.
	testutil.Poll(func() bool { return written.Load() >= total || h.Status(g.ID).State == gatewayd.StateBackoff }, 30*time.Second)
	// A few more samples of the heap, taken after that.
	after := samples.Load() + 5
	testutil.Eventually(t, func() bool { return samples.Load() >= after }, 10*time.Second, "the heap sampled")
	close(stop)
	<-sampled
	grew := peak.Load() - min(peak.Load(), baseline)
	st := h.Status(g.ID)
	t.Logf("peer wrote %d MiB of one header line; gateway %s (%q); heap in use grew by %d MiB at its peak",
		written.Load()>>20, st.State, lastError(st), grew>>20)
	require.Less(t, grew, uint64(32<<20), "one gateway's handshake response held %d MiB of gatewayd's heap", grew>>20)
}
