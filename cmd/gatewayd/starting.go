package main

import (
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/netutil"
)

// startingServer answers on the API's listener while serve starts, until
// the API proper takes the listener over (handOver). The listener stays
// open throughout, so no client is refused in between: one that connects
// while the API is being handed the port waits in the kernel's backlog.
type startingServer struct {
	tcp  *net.TCPListener
	srv  *fasthttp.Server
	log  zerolog.Logger
	done chan struct{} // closed when the accept loop has returned
	conn sync.WaitGroup
	once sync.Once
	// share is a client's share of connections (0: no cap).
	share int
	// maxConns is API_MAX_CONNECTIONS, kept by the listener (CapClients).
	maxConns int
	// refused counts the listener's refusals in the metrics (nil: not).
	refused func(full bool)
}

// startingTimeout bounds a connection's read and write: every answer
// closes its connection, and handOver waits for those open, so a client
// that connects and sends nothing delays the API by at most this.
const startingTimeout = time.Second

// serveStarting answers with h on tcp, at most maxConns connections at
// once (API_MAX_CONNECTIONS, as the API proper: a few hundred idle clients
// made a lower bound answer liveness probes with fasthttp's plain 503).
func serveStarting(tcp *net.TCPListener, h fasthttp.RequestHandler, maxConns, perClient int, refused func(full bool), log zerolog.Logger) *startingServer {
	s := &startingServer{tcp: tcp, log: log, refused: refused, done: make(chan struct{}), share: api.ClientShare(maxConns, perClient), maxConns: maxConns,
		srv: &fasthttp.Server{Handler: h, ReadTimeout: startingTimeout, WriteTimeout: startingTimeout,
			NoDefaultServerHeader: true, DisableKeepalive: true, Concurrency: api.ServerConcurrency(maxConns),
			// A body costs what arrives (h drops it): fasthttp would
			// allocate a whole announced length, up to its default 4 MiB,
			// at the head, for every connection of a standby that may
			// wait for hours.
			StreamRequestBody: true}}
	go s.accept()
	return s
}

func (s *startingServer) accept() {
	defer close(s.done)
	// Backs off when out of descriptors, as the API's own accept loop
	// does; handOver's deadline, or serve's close, ends it.
	// One client holds at most its share (API_MAX_CONNECTIONS_PER_CLIENT),
	// as with the API proper: without it one address that kept
	// API_MAX_CONNECTIONS connections open left every other client,
	// probes included, fasthttp's plain 503 for as long as a standby
	// waits (found by an audit, helper 1).
	ln, stopRefusals := api.CapClients(netutil.RetryAccept(s.tcp, s.log), s.maxConns, s.share, s.refused, s.log)
	defer stopRefusals()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.conn.Add(1)
		go func() {
			defer s.conn.Done()
			_ = s.srv.ServeConn(c) // closes c
		}()
	}
}

// handOver stops answering and leaves the listener to the API proper:
// the accept loop is interrupted by a deadline (closing the listener
// would refuse clients), the connections it took finish their one answer.
// It is safe to call more than once.
func (s *startingServer) handOver() {
	s.once.Do(func() {
		_ = s.tcp.SetDeadline(time.Unix(1, 0))
		<-s.done
		_ = s.tcp.SetDeadline(time.Time{})
		s.conn.Wait()
	})
}
