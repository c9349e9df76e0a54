package api

import (
	"bufio"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

const resReading = "READING"

// errNoWaveform: the reading exists but has no samples.
var errNoWaveform = &Error{Status: fiber.StatusNotFound, Code: "WAVEFORM_NOT_FOUND",
	Message: "The reading has no samples (not complete, or removed by WAVEFORM_RETENTION)"}

// takeReading stores a QUEUED reading and hands it to the gateway's actor;
// a reading the runtime refuses at once (not connected, queue full) is
// removed again, so a refused request leaves nothing behind.
func (s *server) takeReading(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	rid := uuid.New()
	r, sensor, err := s.store.CreateReading(ctx, rid, id, gatewayd.TriggerManual)
	if err != nil {
		if errors.Is(err, gatewayd.ErrUnavailable) {
			// A timeout after the INSERT was sent may still commit it
			// (pgx cancels the statement as it gives up, but a lock
			// released in between lets it commit first): the client is
			// told 503, so the row must not stay QUEUED with no actor to
			// run it. The abandoned-readings sweep is the backstop.
			s.discardReading(ctx, rid)
		}
		return scoped(err, resSensor, "")
	}
	var rate float64
	if sensor.ReadRateHz != nil {
		rate = *sensor.ReadRateHz
	}
	if err := s.rt.TakeReading(ctx, r, sensor.Serial, rate); err != nil {
		s.discardReading(ctx, r.ID)
		if errors.Is(err, gatewayd.ErrNotFound) {
			err = gatewayd.ErrNotConnected // the runtime does not run the gateway (yet)
		}
		return scoped(err, resSensor, "")
	}
	c.Location("/api/readings/" + r.ID.String()) // where to follow it
	return c.Status(fiber.StatusAccepted).JSON(renderReading(r))
}

// discardReading removes a QUEUED reading whose request failed. The
// removal gets a budget of its own: a refusal that came late (a loaded
// machine, an answer near the deadline) must not leave the row behind
// because the request's budget ran out. What it cannot remove the
// abandoned-readings sweep fails later.
func (s *server) discardReading(ctx context.Context, id uuid.UUID) {
	if s.opts.Base != nil && s.opts.Base.Err() != nil {
		return // shutting down: the next start fails the reading (interrupted)
	}
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.DBTimeout)
	defer dcancel()
	if err := s.store.DiscardReading(dctx, id); err != nil {
		s.log.Warn().Err(err).Str("reading_id", id.String()).Msg("a refused reading could not be removed")
	}
}

func (s *server) sensorReadings(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the query's problems, if any
	var f store.ReadingFilter
	page, err := pageQuery(c, map[string]func(string) string{
		"status": func(v string) string {
			switch st := gatewayd.ReadingStatus(v); st {
			case gatewayd.ReadingQueued, gatewayd.ReadingRunning, gatewayd.ReadingComplete, gatewayd.ReadingFailed:
				f.Status = st
				return ""
			}
			return "must be QUEUED, RUNNING, COMPLETE or FAILED"
		},
		"since": timeParam(&f.Since),
		"until": timeParam(&f.Until),
	})
	if err := invalid(idErr, err); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	items, total, err := s.store.ListReadings(ctx, id, f, page)
	if err != nil {
		return err
	}
	if total == 0 {
		if _, err := s.store.GetSensor(ctx, id); err != nil {
			return scoped(err, resSensor, "")
		}
	}
	return c.JSON(renderList(items, total, page, renderReading))
}

// timeParam parses an RFC 3339 time into *dst. RFC 3339 lets the 'T' and
// the 'Z' be lower case; Go's layout does not, so they are raised first
// (no other letter is valid in the format).
func timeParam(dst **time.Time) func(string) string {
	return func(v string) string {
		t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(v))
		if err != nil {
			return "must be an RFC 3339 time such as 2026-11-29T05:32:54Z"
		}
		*dst = &t
		return ""
	}
}

// waveform answers the samples as JSON, or as CSV rows t,x,y,z (t in
// seconds from the first sample) with Accept: text/csv. Either is made as
// it is written, a piece at a time: what waits for a slow client is the
// samples themselves (12 bytes each), under AnswerBudget.
func (s *server) waveform(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	made, err := s.answers.making(c, s.opts.DBTimeout)
	if err != nil {
		return err
	}
	defer made()
	w, err := s.loadWaveform(c, id)
	if err != nil {
		return err
	}
	// The answer depends on Accept: a cache must know (RFC 9110 §12.5.5).
	c.Vary(fiber.HeaderAccept)
	write := writeWaveformJSON
	if wantsCSV(c.Get(fiber.HeaderAccept)) {
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		write = writeWaveformCSV
	} else {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	}
	if c.Method() == fiber.MethodHead {
		// The GET's head (chunked), and no stream: for HEAD fasthttp
		// skips a stream's body but still wrote its closing CRLF, two
		// stray bytes in front of the connection's next answer (found
		// by an audit, helper 2).
		c.Response().Header.SetContentLength(-1)
		return nil
	}
	release, err := s.answers.take(c, 12*len(w.X))
	if err != nil {
		return err
	}
	c.Context().SetBodyStreamWriter(func(bw *bufio.Writer) {
		defer release()  // written, or the client is gone
		_ = write(bw, w) // an error is the client's going away
	})
	return nil
}

// answerPiece is how much of an answer is made before it is written.
const answerPiece = 32 << 10

func writeWaveformCSV(bw *bufio.Writer, w gatewayd.Waveform) error {
	buf := make([]byte, 0, answerPiece+128)
	buf = append(buf, "t,x,y,z\n"...)
	for i := range w.X {
		t := float64(i)
		if w.SampleRateHz > 0 {
			t /= w.SampleRateHz
		}
		buf = strconv.AppendFloat(buf, t, 'g', -1, 64)
		for _, v := range [3]float32{w.X[i], w.Y[i], w.Z[i]} {
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, float64(v), 'g', -1, 32)
		}
		buf = append(buf, '\n')
		if len(buf) >= answerPiece {
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := bw.Write(buf)
	return err
}

func writeWaveformJSON(bw *bufio.Writer, w gatewayd.Waveform) error {
	buf := make([]byte, 0, answerPiece+64)
	buf = append(buf, `{"sample_rate_hz":`...)
	buf = appendRate(buf, w.SampleRateHz)
	buf = append(buf, `,"unit":"g"`...)
	for _, axis := range []struct {
		name string
		v    []float32
	}{{"x", w.X}, {"y", w.Y}, {"z", w.Z}} {
		buf = append(buf, `,"`...)
		buf = append(buf, axis.name...)
		buf = append(buf, `":[`...)
		for start := 0; start < len(axis.v); start += floatsPerPiece {
			if start > 0 {
				buf = append(buf, ',')
			}
			buf = appendFloatList(buf, axis.v[start:min(start+floatsPerPiece, len(axis.v))], 32)
			if len(buf) >= answerPiece {
				if _, err := bw.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		buf = append(buf, ']')
	}
	buf = append(buf, '}')
	_, err := bw.Write(buf)
	return err
}

// spectrum answers the single-sided amplitude spectrum of one axis (x
// unless ?axis= says otherwise): Hann window, corrected for its coherent
// gain, so a sine of amplitude A peaks at A.
func (s *server) spectrum(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the query's problems, if any
	axis := "x"
	if err := invalid(idErr, plainQuery(c, map[string]func(string) string{"axis": func(v string) string {
		if v != "x" && v != "y" && v != "z" {
			return "must be x, y or z"
		}
		axis = v
		return ""
	}})); err != nil {
		return err
	}
	made, err := s.answers.making(c, s.opts.DBTimeout)
	if err != nil {
		return err
	}
	defer made()
	w, err := s.loadWaveform(c, id)
	if err != nil {
		return err
	}
	samples := map[string][]float32{"x": w.X, "y": w.Y, "z": w.Z}[axis]
	values := make([]float64, len(samples))
	for i, v := range samples {
		values[i] = float64(v)
	}
	freq, amp := s.analyzer.Spectrum(values, w.SampleRateHz)
	out := make([]byte, 0, 64+len(freq)*24)
	out = append(out, `{"axis":"`...)
	out = append(out, axis...)
	out = append(out, `","unit":"g","frequency_hz":`...)
	out = appendFloats(out, freq, 64)
	out = append(out, `,"amplitude":`...)
	out = appendFloats(out, amp, 64)
	out = append(out, '}')
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return s.sendHeld(c, out)
}

// loadWaveform returns a reading's samples: 404 READING_NOT_FOUND for no
// such reading, 404 WAVEFORM_NOT_FOUND for a reading without samples (not
// complete, or removed by WAVEFORM_RETENTION).
func (s *server) loadWaveform(c *fiber.Ctx, id uuid.UUID) (gatewayd.Waveform, error) {
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	w, err := s.store.GetWaveform(ctx, id)
	if errors.Is(err, gatewayd.ErrNotFound) {
		if _, err := s.store.GetReading(ctx, id); err != nil {
			return w, scoped(err, resReading, "")
		}
		return w, errNoWaveform
	}
	return w, scoped(err, resReading, "")
}

func appendRate(b []byte, rate float64) []byte {
	if rate <= 0 {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, rate, 'g', -1, 64)
}

// appendFloats writes v as a JSON array, each number in the shortest
// form that reads back as the same float of bits (32 or 64).
func appendFloats[F float32 | float64](b []byte, v []F, bits int) []byte {
	b = append(b, '[')
	return append(appendFloatList(b, v, bits), ']')
}

// appendFloatList is appendFloats without the brackets.
func appendFloatList[F float32 | float64](b []byte, v []F, bits int) []byte {
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, bits)
	}
	return b
}

// floatsPerPiece is how many samples a waveform's JSON answer makes at a
// time (at most ~16 bytes each, about half an answerPiece).
const floatsPerPiece = 1024

// wantsCSV says whether an Accept header prefers text/csv to JSON (RFC
// 9110 §12.5.1): each offer takes the q of the most specific media range
// that matches it (type/subtype over type/* over */*). The higher q wins;
// on a tie the more specific range, then the one listed first; no Accept
// is JSON. Media types compare case-insensitively, and a range's
// parameters other than q (charset=utf-8, header=present) do not stop it
// matching: Fiber's negotiation sent JSON to "TEXT/CSV" and to
// "text/csv; charset=utf-8".
func wantsCSV(accept string) bool {
	csv, json := offer{rank: -1}, offer{rank: -1}
	for pos, r := range strings.Split(accept, ",") {
		params := strings.Split(r, ";")
		mt := strings.ToLower(strings.TrimSpace(params[0]))
		q := 1.0
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0 // a malformed weight is no preference
				}
				q = f
			}
		}
		csv.consider(rangeRank(mt, "text", "csv"), q, pos)
		json.consider(rangeRank(mt, "application", "json"), q, pos)
	}
	if csv.rank < 0 || csv.q == 0 {
		return false
	}
	if json.rank < 0 || csv.q != json.q {
		return json.rank < 0 || csv.q > json.q
	}
	return csv.rank > json.rank || (csv.rank == json.rank && csv.pos < json.pos)
}

// offer is the media range that applies to one offered type: its
// specificity (rangeRank), q and position in the header.
type offer struct {
	rank, pos int
	q         float64
}

func (o *offer) consider(rank int, q float64, pos int) {
	if rank > o.rank {
		*o = offer{rank: rank, pos: pos, q: q}
	}
}

// rangeRank is how specifically the media range mt matches type/subtype:
// 2 exactly, 1 as type/*, 0 as */*, -1 not at all.
func rangeRank(mt, typ, sub string) int {
	switch mt {
	case typ + "/" + sub:
		return 2
	case typ + "/*":
		return 1
	case "*/*":
		return 0
	}
	return -1
}
