package api

import (
	"bytes"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ctcgw/gatewayd/web"
)

// What answers hold, from when they are made until fasthttp has written
// them (or the 30 s write timeout has ended them), is bounded twice: for
// all clients together, and for each client (an IPv4 address, an IPv6
// /64, as guesser keys them) to a quarter of that. One client that asks
// for large answers on many connections and reads none filled the whole
// budget, and every other client's waveform was 503 until the write
// timeout ended them (found by an audit, helper 2): now it fills its
// share, and only it gets 503s.

// AnswerBudget bounds the bytes that waveform (JSON and CSV) and spectrum
// answers hold, all clients together: a client that does not read its
// answers would otherwise keep them in the heap for the write timeout
// (30 s), as many as it has connections. One client's answers hold at
// most AnswerBudget/answerShares. An answer that does not fit is 503
// with Retry-After; one larger than a client's share is sent when that
// client holds no other, and one larger than the whole budget when it is
// alone.
const AnswerBudget = 16 << 20

// JSONBudget bounds, in the same way, the bytes that every other answer
// of HeldAnswerMin bytes or more holds (a page of large metadata, the
// status list of a large fleet, /metrics): all of them were built whole
// and held until written, so one client that asked for a 10,000-gateway
// status list on many connections and read none held ~2.4 MB a
// connection, without bound but API_MAX_CONNECTIONS (found by an audit,
// helper 2). It is apart from AnswerBudget, and larger: dashboards poll
// lists, and a burst of waveforms must not refuse them (nor they it).
const JSONBudget = 64 << 20

// HeldAnswerMin is the size from which an answer counts against
// JSONBudget. Below it an answer costs no more than the connection's own
// buffers (8 KiB to write, 16 KiB to read) a few times over, and is not
// counted: an answer by id, a page of ordinary records, a health check
// pay one length check and nothing else.
const HeldAnswerMin = 64 << 10

// answerShares: one client may hold a quarter of a budget.
const answerShares = 4

// answerMakers is how many waveform and spectrum answers are made (their
// samples loaded, decoded and, for a spectrum, transformed) at once; the
// others wait, within the database's time, holding nothing yet.
// answerTurnsPerClient is how many of them one client makes or waits
// for a turn to make at once: its others wait behind those, apart from
// the other clients. With one queue for all, a client that kept many
// spectra of a large reading waiting was ahead of everyone else in it,
// and another client's waveform waited 5 s and got 503 (found by an
// audit, helper 4).
const (
	answerMakers         = 4
	answerTurnsPerClient = answerMakers / 2
)

// listTurnsPerClient is how many lists (pages of records, the status
// list, a gateway's sensors) a client whose lists are large builds at
// once; its others wait behind those, apart from other clients', within
// the database's time, then get 503. JSONBudget counts an answer once it
// is built, and building one takes about four times its size (its rows,
// then JSON in two growing buffers): one viewer that asked for pages of
// large metadata on many connections built as many at once as it had
// connections, up to API_MAX_CONNECTIONS_PER_CLIENT, and the budget then
// refused most of them (16 connections took the heap up by ~28 pages of
// 10 MB, 8 asking for pages of 90 MB to 2.1 GB; found by an audit,
// helper 2). One at a time, as one core: with two, a client hammering
// 10 MB pages on 8 connections took both of a 2-core machine's, and
// another client's /api/health went from 0.5 ms to 40 ms at the median
// (with one, 0.4 ms; its p99 went from 4 ms idle to 47 ms, 141 ms with
// two: what is left is not the turns').
// A client is held to its turn for largeListsFor after a list of
// HeldAnswerMin bytes or more; others build up to listBuildsPerClient
// lists at once, so many small lists at once from one address (32
// clients behind one proxy, gwload) lose nothing (two turns for everyone
// halved them), and a client's first burst of large ones, before any is
// known to be large, is bounded too. A minute, since the mark is made
// when a list is built, before it is written: with 10 s, a client whose
// large page took that long to write and read (a slow link, a loaded
// box: the test's took 3 s alone, over 10 in the suite) came back
// unmarked, and its next burst was built 16 at once.
const (
	listTurnsPerClient  = 1
	listBuildsPerClient = 32
	largeListsFor       = time.Minute
)

var errAnswersBusy = &Error{Status: fiber.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE",
	Message: "Too many large answers are being sent; retry shortly"}

// budget counts the bytes answers hold, in all and per client.
type budget struct {
	limit, share int
	mu           sync.Mutex
	held         int
	clients      map[string]int
}

func newBudget(limit int) budget {
	return budget{limit: limit, share: limit / answerShares, clients: make(map[string]int)}
}

// take reserves n bytes for c's client until release is called (once),
// or answers errAnswersBusy with Retry-After: 1. An answer over the
// client's share is taken when the client holds nothing else, one over
// the whole budget when nobody does.
func (b *budget) take(c *fiber.Ctx, n int) (release func(), err error) {
	n = min(n, b.limit)
	key := guesser(c.IP())
	b.mu.Lock()
	defer b.mu.Unlock()
	own := b.clients[key]
	if b.held+n > b.limit || (own > 0 && own+n > b.share) {
		c.Set(fiber.HeaderRetryAfter, "1")
		return nil, errAnswersBusy
	}
	b.held += n
	b.clients[key] = own + n
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.held -= n
			if left := b.clients[key] - n; left > 0 {
				b.clients[key] = left
			} else {
				delete(b.clients, key) // the map holds only clients that hold answers
			}
		})
	}, nil
}

// answerBudget is the budget of waveform and spectrum answers, and the
// turns to make them.
type answerBudget struct {
	budget
	turns
}

func newAnswerBudget() answerBudget {
	return answerBudget{budget: newBudget(AnswerBudget), turns: newTurns(answerMakers, answerTurnsPerClient, errAnswersBusy)}
}

// turns bound how many answers are made at once: perClient of each
// client's, and, when makers is set, len(makers) of all. A request waits
// for its turn holding nothing but its goroutine.
type turns struct {
	makers    chan struct{} // nil: no bound of all clients together
	perClient int
	busy      *Error // the answer to a request that waited too long
	tmu       sync.Mutex
	clients   map[string]*clientTurns // the clients making or waiting
}

// clientTurns are one client's turns: perClient at once.
type clientTurns struct {
	ch    chan struct{}
	users int // making or waiting; guarded by turns.tmu
}

// newTurns makes the turns of all (0: no bound but each client's) and
// of perClient a client.
func newTurns(all, perClient int, busy *Error) turns {
	var makers chan struct{}
	if all > 0 {
		makers = make(chan struct{}, all)
	}
	return turns{makers: makers, perClient: perClient, busy: busy, clients: make(map[string]*clientTurns)}
}

// making waits, at most within, for a turn to make an answer (first one
// of its client's, then one of all), and returns its end; past within it
// answers the turns' busy error with Retry-After: 1.
func (b *turns) making(c *fiber.Ctx, within time.Duration) (done func(), err error) {
	return b.makingFor(c, guesser(c.IP()), within)
}

// makingFor is making for the client key. A free turn is taken without a
// timer: every GET by id and every page passes here, and the timer and
// the select were a third of what the turns cost such a request.
func (b *turns) makingFor(c *fiber.Ctx, key string, within time.Duration) (done func(), err error) {
	own := b.enter(key)
	gotOwn := take(own.ch)
	if gotOwn && (b.makers == nil || take(b.makers)) {
		return b.end(key, own), nil
	}
	return b.await(c, key, own, gotOwn, within)
}

// await waits, at most within, for the turns makingFor did not find free:
// the client's own unless gotOwn, then one of all.
func (b *turns) await(c *fiber.Ctx, key string, own *clientTurns, gotOwn bool, within time.Duration) (done func(), err error) {
	t := time.NewTimer(within)
	defer t.Stop()
	if !gotOwn {
		select {
		case own.ch <- struct{}{}:
		case <-t.C:
			return nil, b.refuse(c, key, own)
		case <-c.UserContext().Done():
			return nil, b.refuse(c, key, own)
		}
	}
	if b.makers != nil {
		select {
		case b.makers <- struct{}{}:
		case <-t.C:
			<-own.ch
			return nil, b.refuse(c, key, own)
		case <-c.UserContext().Done():
			<-own.ch
			return nil, b.refuse(c, key, own)
		}
	}
	return b.end(key, own), nil
}

// end is what gives the turns taken back.
func (b *turns) end(key string, own *clientTurns) func() {
	if b.makers == nil {
		return func() {
			<-own.ch
			b.leave(key, own)
		}
	}
	return func() {
		<-b.makers
		<-own.ch
		b.leave(key, own)
	}
}

// take takes a free slot of ch, if there is one, without waiting.
func take(ch chan struct{}) bool {
	select {
	case ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// refuse gives up a client's place in line and answers busy.
func (b *turns) refuse(c *fiber.Ctx, key string, own *clientTurns) error {
	b.leave(key, own)
	c.Set(fiber.HeaderRetryAfter, "1")
	return b.busy
}

func (b *turns) enter(key string) *clientTurns {
	b.tmu.Lock()
	defer b.tmu.Unlock()
	own := b.clients[key]
	if own == nil {
		own = &clientTurns{ch: make(chan struct{}, b.perClient)}
		b.clients[key] = own
	}
	own.users++
	return own
}

func (b *turns) leave(key string, own *clientTurns) {
	b.tmu.Lock()
	defer b.tmu.Unlock()
	if own.users--; own.users == 0 {
		delete(b.clients, key) // the map holds only clients making or waiting
	}
}

// listTurns are the turns to build lists: those of the clients whose
// lists are large, and those of the others.
type listTurns struct {
	turns
	others turns
	mu     sync.Mutex
	large  map[string]time.Time // client: when its last large list was built
}

func newListTurns() listTurns {
	return listTurns{turns: newTurns(0, listTurnsPerClient, errAnswersBusy),
		others: newTurns(0, listBuildsPerClient, errAnswersBusy), large: make(map[string]time.Time)}
}

// making waits for one of c's client's turns, of listTurnsPerClient if
// its lists are large, else of listBuildsPerClient, and returns its end.
func (l *listTurns) making(c *fiber.Ctx, within time.Duration) (done func(), err error) {
	key := guesser(c.IP())
	l.mu.Lock()
	at, ok := l.large[key]
	if ok && time.Since(at) >= largeListsFor {
		delete(l.large, key)
		ok = false
	}
	l.mu.Unlock()
	if !ok {
		return l.others.makingFor(c, key, within)
	}
	return l.turns.makingFor(c, key, within)
}

// built notes a list of n bytes built for c's client: from HeldAnswerMin
// on, the client's lists take turns for largeListsFor.
func (l *listTurns) built(c *fiber.Ctx, n int) {
	if n < HeldAnswerMin {
		return
	}
	key, now := guesser(c.IP()), time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.large[key]; !ok && len(l.large) >= maxLargeListClients {
		for k, at := range l.large { // the map holds recent clients only
			if now.Sub(at) >= largeListsFor {
				delete(l.large, k)
			}
		}
	}
	l.large[key] = now
}

// maxLargeListClients is how many clients listTurns keeps before it
// drops those whose large lists are past largeListsFor.
const maxLargeListClients = 1024

// sendHeld answers body under the waveform budget until fasthttp has
// written it (or given up): it closes a body stream then, whatever became
// of the connection. A stream of known length keeps the Content-Length.
func (s *server) sendHeld(c *fiber.Ctx, body []byte) error {
	release, err := s.answers.take(c, cap(body)) // what it holds
	if err != nil {
		return err
	}
	c.Context().SetBodyStream(heldBody{bytes.NewReader(body), release}, len(body))
	return nil
}

type heldBody struct {
	*bytes.Reader
	release func()
}

func (h heldBody) Close() error {
	h.release()
	return nil
}

// sharedAnswer says whether a route's answers are built once for the
// process and shared: holding one costs nothing.
func sharedAnswer(route string) bool {
	switch route {
	case "/", web.Prefix + "*", "/api/openapi.json", "/api/docs", docsCSSPath:
		return true
	}
	return false
}

// holdLarge puts an answer of HeldAnswerMin bytes or more under
// JSONBudget until fasthttp has written it, or refuses it (the error to
// answer instead). It runs once the handler and the error handler are
// done, so every answer passes it: the one place where answers are
// bounded. Streams (the waveform, a spectrum, the event stream) are
// bounded where they are made; a HEAD answer's body is dropped at once,
// its Content-Length kept.
func (s *server) holdLarge(c *fiber.Ctx) error {
	resp := c.Response()
	if resp.IsBodyStream() {
		return nil
	}
	body := resp.Body()
	if len(body) < HeldAnswerMin || sharedAnswer(c.Route().Path) {
		return nil
	}
	if m := c.Method(); m != fiber.MethodGet && m != fiber.MethodHead {
		// A write's answer is the echo of what it stored (its body is at
		// most BodyLimit): refused here, a stored POST or PUT was
		// answered 503 (found by an audit, helper 12), which a client
		// retries. It is sent, not held.
		return nil
	}
	if c.Context().IsHead() {
		n := len(body)
		resp.ResetBody()
		resp.Header.SetContentLength(n)
		return nil
	}
	release, err := s.large.take(c, cap(body)) // what it holds
	if err != nil {
		return err
	}
	// The body is the handler's own (c.JSON, c.Send) or the response's
	// buffer (a handler that wrote it, as /metrics does). fasthttp keeps
	// that buffer with the request's context and writes it again only for
	// the next request, once this answer is done; but with
	// ReduceMemoryUsage it would go back to a pool shared by every
	// connection. Swapping nil in makes the body ours either way, and
	// keeps the context from keeping a buffer as large as this answer.
	resp.SwapBody(nil)
	resp.SetBodyStream(heldBody{bytes.NewReader(body), release}, len(body))
	return nil
}
