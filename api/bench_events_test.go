package api_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/events"
)

// chunkCounter reads one raw /api/events response: it counts the reads
// that returned data (about one per flush of the stream) and the events
// in them. (It read a chunked body, which the stream no longer is since
// it took over its connection: the benchmark failed from then on.)
type chunkCounter struct {
	mu     sync.Mutex
	chunks int
	events int
}

func (c *chunkCounter) counts() (chunks, events int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chunks, c.events
}

func (c *chunkCounter) read(conn net.Conn) error {
	br := bufio.NewReaderSize(conn, 64<<10)
	for { // status line and headers
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
	}
	// The stream is the raw socket (hijacked, not chunked): a read that
	// returns data is about one flush of the stream, when the reader
	// keeps up. The last bytes of each read are kept, so an event line
	// split between two reads is counted once.
	const mark = "\nevent: "
	buf := make([]byte, 64<<10)
	var tail []byte
	for {
		n, err := br.Read(buf)
		if n > 0 {
			data := append(tail, buf[:n]...)
			c.mu.Lock()
			c.chunks++
			c.events += strings.Count(string(data), mark)
			c.mu.Unlock()
			tail = append([]byte(nil), data[max(0, len(data)-len(mark)+1):]...)
		}
		if err != nil {
			return err
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEventStreamPaced publishes events at a steady 5,000 a second,
// five each millisecond (a reconnect storm of 10,000 gateways publishes
// 40,000 in about 8 s), to
// subscribers reading raw sockets, and reports how many chunks each
// subscriber received per event (1 when every event is flushed on its
// own) and the process's CPU time per event and subscriber (publisher,
// streams and readers together). The box need not be busy: this is the
// case where a stream that flushes whenever it wakes writes per event.
func BenchmarkEventStreamPaced(b *testing.B) {
	data := []byte(`{"id":"3f1c2a4e-8a47-4f4e-9b7e-0c7f5b2d9e11","factory_id":"0c7f5b2d-9e11-4f4e-9b7e-3f1c2a4e8a47","gateway_id":17,"name":"bench gateway","from":"CONNECTING","to":"AUTHENTICATED","at":"2026-12-02T15:04:05.123Z","last_error":""}`)
	for _, subs := range []int{1, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			e := newLiveEnv(b, benchConfig())
			addr := strings.TrimSuffix(strings.TrimPrefix(benchServe(b, e), "http://"), "/api")
			broker := e.h.Telemetry.Events
			counters := make([]*chunkCounter, subs)
			var wg sync.WaitGroup
			for i := range counters {
				conn, err := net.Dial("tcp", addr)
				require.NoError(b, err)
				_, err = conn.Write([]byte("GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n"))
				require.NoError(b, err)
				c := &chunkCounter{}
				counters[i] = c
				wg.Go(func() {
					defer conn.Close()
					_ = c.read(conn)
				})
			}
			b.Cleanup(func() {
				broker.Close() // ends the streams, and so the readers
				wg.Wait()
			})
			require.Eventually(b, func() bool { return broker.Subscribers() == subs }, 10*time.Second, time.Millisecond)

			// Five events every millisecond: finer ticks are not kept by an
			// idle Go process (its poller sleeps in whole milliseconds), and
			// the rate would then depend on how busy the streams keep it.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			chunks0 := 0
			for _, c := range counters {
				n, _ := c.counts()
				chunks0 += n
			}
			cpu0 := cpuTime()
			n := 0
			for b.Loop() {
				if _, err := broker.Publish(events.Event{Type: events.TypeGatewayState, Data: data}); err != nil {
					b.Fatal(err)
				}
				n++
				if n%5 == 0 {
					<-tick.C
				}
			}
			require.Eventually(b, func() bool {
				for _, c := range counters {
					if _, got := c.counts(); got < n {
						return false
					}
				}
				return true
			}, time.Minute, time.Millisecond, "every subscriber gets every event")
			cpu := cpuTime() - cpu0
			chunks := -chunks0
			for _, c := range counters {
				got, _ := c.counts()
				chunks += got
			}
			b.ReportMetric(float64(chunks)/float64(n*subs), "chunks/event")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*subs), "cpu-ns/delivery")
		})
	}
}
