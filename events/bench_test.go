package events

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// drainers subscribes n readers that drain their channels as an SSE stream
// would (minus the network), resubscribing when they overflow as a client
// would reconnect. The returned stop ends them and waits.
func drainers(b *Broker, n, buffer int, f Filter) (stop func()) {
	var wg sync.WaitGroup
	for range n {
		s := b.Subscribe(f, 0, buffer)
		wg.Go(func() {
			for {
				consume(s, func(*Event) {})
				if !s.Overflowed() {
					return // Broker.Close
				}
				s = b.Subscribe(f, 0, buffer)
			}
		})
	}
	return func() {
		b.Close()
		wg.Wait()
	}
}

func benchEvent() Event {
	return Event{
		Type:      TypeGatewayState,
		FactoryID: uuid.New(),
		GatewayID: uuid.New(),
		Data:      []byte(`{"id":"3f1c2a4e-8a47-4f4e-9b7e-0c7f5b2d9e11","factory_id":"0c7f5b2d-9e11-4f4e-9b7e-3f1c2a4e8a47","from":"CONNECTING","to":"AUTHENTICATED","at":"2025-01-01T00:00:00Z","last_error":""}`),
	}
}

// BenchmarkPublish is one publisher and n subscribers that all want every
// event, plus 100 subscribers filtered to another gateway (a UI page per
// gateway), which cost a filter check each and no send.
func BenchmarkPublish(b *testing.B) {
	other := uuid.New()
	cases := []struct {
		name    string
		all     int
		scoped  int
		scopeTo Filter
	}{
		{"subscribers=0", 0, 0, Filter{}},
		{"subscribers=1", 1, 0, Filter{}},
		{"subscribers=100", 100, 0, Filter{}},
		{"subscribers=100_filtered_out", 0, 100, Filter{GatewayID: &other}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			br := NewBroker(DefaultRingSize)
			stop := drainers(br, c.all, 1024, Filter{})
			stopScoped := drainers(br, c.scoped, 1024, c.scopeTo)
			e := benchEvent()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := br.Publish(e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(br.Overflows()), "overflows")
			stop()
			stopScoped()
		})
	}
}

// BenchmarkPublishParallel is many actors publishing at once to 100
// subscribers: the broker's lock is the point of contention.
func BenchmarkPublishParallel(b *testing.B) {
	for _, n := range []int{0, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			br := NewBroker(DefaultRingSize)
			stop := drainers(br, n, 1024, Filter{})
			e := benchEvent()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := br.Publish(e); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(br.Overflows()), "overflows")
			stop()
		})
	}
}

// BenchmarkPublishJSON includes the one marshal per event.
func BenchmarkPublishJSON(b *testing.B) {
	br := NewBroker(DefaultRingSize)
	type state struct {
		ID        uuid.UUID `json:"id"`
		FactoryID uuid.UUID `json:"factory_id"`
		From      string    `json:"from"`
		To        string    `json:"to"`
		LastError string    `json:"last_error"`
	}
	p := state{uuid.New(), uuid.New(), "CONNECTING", "AUTHENTICATED", ""}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.PublishJSON(TypeGatewayState, p.FactoryID, p.ID, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubscribeReplay is a client resuming from the oldest event of a
// full ring: the copy that Subscribe makes under the publishing lock.
func BenchmarkSubscribeReplay(b *testing.B) {
	br := NewBroker(DefaultRingSize)
	e := benchEvent()
	for range DefaultRingSize {
		if _, err := br.Publish(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		s := br.Subscribe(Filter{}, 1, 64)
		if len(s.Replay()) != DefaultRingSize-1 {
			b.Fatal("short replay")
		}
		s.Close()
	}
}

// BenchmarkPublishBesideResumes is a publisher (the runtime's actors)
// while 4 clients resume from the oldest event of a full ring in a loop:
// what each publish waits for their copies under the lock (helper 4's
// audit: resumes held 1,000 publishes 12-17 s under -race).
func BenchmarkPublishBesideResumes(b *testing.B) {
	br := NewBroker(DefaultRingSize)
	e := benchEvent()
	for range DefaultRingSize {
		if _, err := br.Publish(e); err != nil {
			b.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := br.Resume(Filter{}, 1, 64) // the whole ring (a reset once 1 has left it)
				s.Replay()
				s.Close()
			}
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Publish(e); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
}

func BenchmarkWriteSSE(b *testing.B) {
	w := bufio.NewWriter(io.Discard)
	e := benchEvent()
	e.ID = 1 << 40
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteSSE(w, e); err != nil {
			b.Fatal(err)
		}
	}
}
