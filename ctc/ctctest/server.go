// Package ctctest is an in-process CTC Connect Wireless gateway simulator,
// the way net/http/httptest is a server: one listener serves many
// gateways, one path each (/gw/<name>), each with its own credentials,
// sensors, fault switches and records. Tests, demos (cmd/ctcsim) and load
// runs use it.
//
// Every gateway lists sensors (DefaultSensors, AddSensor), answers
// readings with a documented synthetic Signal in one of three Encodings,
// pushes temperatures (Faults.TempEvery, PushTemperature) and
// unsolicited readings (PushReading), and has fault switches for logins,
// sockets, discovery, readings and hostile behaviour (Faults).
//
// The same listener serves a control surface, a small HTTP JSON API to
// break and heal a running gateway:
//
//	GET    /control                             every gateway: name, url, open, accepted, logins
//	GET    /control/<name>                      its faults, sensors and stats (last 10 frames and close codes)
//	POST   /control/<name>                      merge {"refuse_logins":true,"drop_after":"5s",…} into its faults
//	POST   /control/<name>/drop[?code=1001]     close its sockets (no code: abruptly)
//	POST   /control/<name>/sensors              add or replace {"serial":123,"name":"Press"}
//	                                            (part_num, read_rate, samples, connected optional)
//	DELETE /control/<name>/sensors/<serial>     remove a sensor
//	POST   /control/<name>/readings/<serial>    push an unsolicited NOT_DYN_READING
//	POST   /control/<name>/temperature/<serial> push NOT_DYN_TEMP {"temp":25.5}
//
// Fault fields are the json names of Faults' fields; durations are Go
// duration strings ("250ms", "5s"; capture_delay also "realtime"). An
// unknown gateway is 404, an unknown field or a bad value 400, errors are
// {"error": "…"}.
package ctctest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ctcgw/gatewayd/ctc"
)

// Server is a set of simulated gateways behind one listener.
type Server struct {
	ln       net.Listener
	http     *http.Server
	base     string
	upgrader websocket.Upgrader

	// mu guards gateways and the closing of closing; lock order: Server.mu
	// before Gateway.mu (see Gateway).
	mu       sync.RWMutex
	gateways map[string]*Gateway
	closing  chan struct{}
	// handlers counts WebSocket handlers; Add happens under mu.RLock after
	// checking closing, so Close's Wait never races an Add.
	handlers sync.WaitGroup
	served   chan struct{}

	// Handshakes in progress (request received, upgrade not done) and
	// their peak: what a client's dial concurrency looks like from here.
	handshakes    atomic.Int64
	handshakePeak atomic.Int64
	logins        atomic.Int64
	// stallWakeups counts how often stalled handshakes went (back) to
	// sleep: once each, plus once per SetFaults. Tests read it to prove
	// that nobody polls. (Per server: a package-wide count was moved by
	// other tests' stalls running in parallel.)
	stallWakeups atomic.Int64
	// waves: a sensor's readings are the same every time, so gateways
	// sharing default serials encode each once.
	waves waveCache
	// keep is how many frames and close codes each gateway records.
	keep atomic.Int64
}

// NewServer listens on addr ("127.0.0.1:0" for a free port) and serves
// until Close.
func NewServer(addr string) (*Server, error) { return NewTLSServer(addr, nil) }

// NewTLSServer is NewServer over TLS when cfg is not nil: gateways' URLs
// are wss://, and the control surface is https://. testutil.NewTestCA
// makes a cfg and the CA file that verifies it.
func NewTLSServer(addr string, cfg *tls.Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ctctest: listen: %w", err)
	}
	scheme := "ws://"
	if cfg != nil {
		ln, scheme = tls.NewListener(ln, cfg), "wss://"
	}
	s := &Server{
		ln:       ln,
		base:     scheme + ln.Addr().String(),
		gateways: make(map[string]*Gateway),
		closing:  make(chan struct{}),
		served:   make(chan struct{}),
		upgrader: websocket.Upgrader{
			CheckOrigin:     func(*http.Request) bool { return true },
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
		},
	}
	s.keep.Store(defaultKeep)
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.http.Serve(ln)
	}()
	return s, nil
}

// Addr is the listener's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Config is one simulated gateway's identity.
type Config struct {
	Email    string
	Password string
	// Sensors answer GET_DYN_CONNECTED; nil gives DefaultSensors(2), an
	// empty non-nil slice gives []. Add copies the slice; AddSensor and
	// RemoveSensor change the gateway's copy while it runs.
	Sensors []ctc.Sensor
}

// Add creates (or replaces the config of) the gateway at /gw/<name>.
func (s *Server) Add(name string, cfg Config) *Gateway {
	if cfg.Sensors == nil {
		cfg.Sensors = DefaultSensors(2)
	} else {
		cfg.Sensors = slices.Clone(cfg.Sensors)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gateways[name]; ok {
		g.mu.Lock()
		g.cfg = cfg
		g.mu.Unlock()
		return g
	}
	g := newGateway(s, name, cfg)
	s.gateways[name] = g
	return g
}

// Gateway returns the named gateway or nil.
func (s *Server) Gateway(name string) *Gateway {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gateways[name]
}

// Gateways returns every gateway.
func (s *Server) Gateways() []*Gateway {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Gateway, 0, len(s.gateways))
	for _, g := range s.gateways {
		out = append(out, g)
	}
	return out
}

// Close stops listening, closes every connection abruptly and waits for
// every goroutine of the server to end.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
		s.mu.Unlock()
		return
	default:
		close(s.closing)
	}
	gws := make([]*Gateway, 0, len(s.gateways))
	for _, g := range s.gateways {
		gws = append(gws, g)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx) // hijacked websocket conns are not tracked by http
	_ = s.http.Close()
	for _, g := range gws {
		g.Drop(0)
	}
	<-s.served
	s.handlers.Wait()
}

// serveGateway serves /gw/<name>: the WebSocket of a simulated gateway.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/gw/")
	g := s.Gateway(name)
	if !ok || g == nil {
		http.NotFound(w, r)
		return
	}
	s.mu.RLock()
	select {
	case <-s.closing:
		s.mu.RUnlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	default:
	}
	s.handlers.Add(1)
	s.mu.RUnlock()
	defer s.handlers.Done()
	n := s.handshakes.Add(1)
	for p := s.handshakePeak.Load(); n > p && !s.handshakePeak.CompareAndSwap(p, n); p = s.handshakePeak.Load() {
	}
	if !g.waitHandshake(r.Context(), s.closing) {
		s.handshakes.Add(-1)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	s.handshakes.Add(-1)
	if err != nil {
		return
	}
	c := g.attach(ws)
	defer g.detach(c)
	c.serve()
}

// HandshakePeak returns the most WebSocket handshakes seen in progress at
// once since the last ResetHandshakePeak.
func (s *Server) HandshakePeak() int { return int(s.handshakePeak.Load()) }

// KeepRecords sets how many received frames and close codes each gateway
// keeps (the most recent; default 1000). Load runs set 0, so a long soak
// measures the client, not the simulator's memory.
func (s *Server) KeepRecords(n int) { s.keep.Store(int64(max(0, n))) }

// Logins counts the logins accepted by every gateway of the server.
func (s *Server) Logins() int { return int(s.logins.Load()) }

// ResetHandshakePeak starts a new peak measurement.
func (s *Server) ResetHandshakePeak() { s.handshakePeak.Store(s.handshakes.Load()) }
