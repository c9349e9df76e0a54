package ctctest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctcgw/gatewayd/ctc"
)

// routes serves the gateways' WebSockets and the control surface (see the
// package documentation).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/gw/", s.serveGateway)
	mux.HandleFunc("GET /control", s.controlList)
	mux.HandleFunc("GET /control/{name}", s.withGateway(controlGet))
	mux.HandleFunc("POST /control/{name}", s.withGateway(controlFaults))
	mux.HandleFunc("POST /control/{name}/drop", s.withGateway(controlDrop))
	mux.HandleFunc("POST /control/{name}/sensors", s.withGateway(controlAddSensor))
	mux.HandleFunc("DELETE /control/{name}/sensors/{serial}", s.withGateway(controlRemoveSensor))
	mux.HandleFunc("POST /control/{name}/readings/{serial}", s.withGateway(controlPushReading))
	mux.HandleFunc("POST /control/{name}/temperature/{serial}", s.withGateway(controlPushTemperature))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// withGateway looks up {name}: 404 when there is no such gateway.
func (s *Server) withGateway(h func(http.ResponseWriter, *http.Request, *Gateway)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		g := s.Gateway(name)
		if g == nil {
			writeError(w, http.StatusNotFound, "no gateway %q", name)
			return
		}
		h(w, r, g)
	}
}

type gatewaySummary struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Open     int    `json:"open"`
	Accepted int    `json:"accepted"`
	Logins   int    `json:"logins"`
}

func (s *Server) controlList(w http.ResponseWriter, _ *http.Request) {
	gws := s.Gateways()
	slices.SortFunc(gws, func(a, b *Gateway) int { return strings.Compare(a.name, b.name) })
	out := make([]gatewaySummary, 0, len(gws))
	for _, g := range gws {
		st := g.counters()
		out = append(out, gatewaySummary{Name: g.name, URL: g.url, Open: st.Open, Accepted: st.Accepted, Logins: st.Logins})
	}
	writeJSON(w, http.StatusOK, map[string]any{"gateways": out})
}

// counters is Stats without copying the frame records.
func (g *Gateway) counters() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.stats
	st.Open = len(g.conns)
	st.FloodSent = int(g.floodSent.Load())
	st.Frames, st.CloseCodes = nil, nil
	return st
}

// sensorJSON is a sensor on the control surface.
type sensorJSON struct {
	Serial    int64   `json:"serial"`
	Name      string  `json:"name"`
	PartNum   string  `json:"part_num"`
	ReadRate  float64 `json:"read_rate"`
	Samples   int     `json:"samples"`
	Connected int     `json:"connected"`
}

type frameJSON struct {
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	Raw  string    `json:"raw"`
}

type statsJSON struct {
	Accepted            int         `json:"accepted"`
	Open                int         `json:"open"`
	Logins              int         `json:"logins"`
	LoginsRefused       int         `json:"logins_refused"`
	Pings               int         `json:"pings"`
	Violations          int         `json:"violations"`
	GarbageSent         int         `json:"garbage_sent"`
	DiscoveriesAnswered int         `json:"discoveries_answered"`
	TemperaturesPushed  int         `json:"temperatures_pushed"`
	ReadingsRequested   int         `json:"readings_requested"`
	ReadingsDelivered   int         `json:"readings_delivered"`
	FloodSent           int         `json:"flood_sent"`
	OversizeSent        int         `json:"oversize_sent"`
	CloseCodes          []int       `json:"close_codes"` // the last 10
	LastFrames          []frameJSON `json:"last_frames"` // the last 10 received, raw cut at 200 bytes
}

const controlLast = 10

func controlGet(w http.ResponseWriter, _ *http.Request, g *Gateway) {
	g.mu.Lock()
	st := g.stats
	st.Open = len(g.conns)
	frames := slices.Clone(st.Frames[max(0, len(st.Frames)-controlLast):])
	codes := slices.Clone(st.CloseCodes[max(0, len(st.CloseCodes)-controlLast):])
	g.mu.Unlock()
	sj := statsJSON{
		Accepted: st.Accepted, Open: st.Open, Logins: st.Logins, LoginsRefused: st.LoginsRefused, Pings: st.Pings,
		Violations: st.Violations, GarbageSent: st.GarbageSent, DiscoveriesAnswered: st.DiscoveriesAnswered,
		TemperaturesPushed: st.TemperaturesPushed, ReadingsRequested: st.ReadingsRequested,
		ReadingsDelivered: st.ReadingsDelivered, FloodSent: int(g.floodSent.Load()), OversizeSent: st.OversizeSent,
		CloseCodes: codes, LastFrames: make([]frameJSON, 0, len(frames)),
	}
	if sj.CloseCodes == nil {
		sj.CloseCodes = []int{}
	}
	for _, f := range frames {
		raw := f.Raw
		if len(raw) > 200 {
			raw = raw[:200] + "…"
		}
		sj.LastFrames = append(sj.LastFrames, frameJSON{Type: f.Type, At: f.At, Raw: raw})
	}
	sensors := g.Sensors()
	sensorsOut := make([]sensorJSON, 0, len(sensors))
	for _, s := range sensors {
		sensorsOut = append(sensorsOut, sensorJSON{Serial: s.Serial, Name: s.Name, PartNum: s.PartNum, ReadRate: s.ReadRate, Samples: s.Samples, Connected: s.Connected})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": g.name, "url": g.url, "faults": g.Faults(), "sensors": sensorsOut, "stats": sj,
	})
}

// readBody reads a JSON request body of at most 1 MiB.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: %v", err)
		return nil, false
	}
	return b, true
}

func controlFaults(w http.ResponseWriter, r *http.Request, g *Gateway) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	patch, err := parseFaultPatch(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	f := g.UpdateFaults(patch)
	writeJSON(w, http.StatusOK, map[string]any{"faults": f})
}

func controlDrop(w http.ResponseWriter, r *http.Request, g *Gateway) {
	code := 0
	if q := r.URL.Query().Get("code"); q != "" {
		n, err := strconv.Atoi(q)
		if err == nil {
			err = CheckDropCode(n)
		}
		if err != nil || n == 0 {
			writeError(w, http.StatusBadRequest, "code: want a close code a peer may send (1000–1003, 1007–1013, 3000–4999) or 1005, 1006, 1015 (no close frame), got %q", q)
			return
		}
		code = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"dropped": g.Drop(code)})
}

func controlAddSensor(w http.ResponseWriter, r *http.Request, g *Gateway) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	in := sensorJSON{PartNum: DefaultPartNum, ReadRate: DefaultReadRate, Samples: DefaultSamples, Connected: 1}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "sensor: %v", err)
		return
	}
	if in.Serial == 0 {
		writeError(w, http.StatusBadRequest, "sensor: serial is required")
		return
	}
	if in.Name == "" {
		in.Name = "Sensor " + strconv.FormatInt(in.Serial, 10)
	}
	g.AddSensor(ctc.Sensor{Serial: in.Serial, Connected: in.Connected, PartNum: in.PartNum, ReadRate: in.ReadRate, Samples: in.Samples, Name: in.Name})
	writeJSON(w, http.StatusCreated, in)
}

// pathSerial parses {serial}.
func pathSerial(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue("serial"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "serial: want an integer, got %q", r.PathValue("serial"))
		return 0, false
	}
	return n, true
}

func controlRemoveSensor(w http.ResponseWriter, r *http.Request, g *Gateway) {
	serial, ok := pathSerial(w, r)
	if !ok {
		return
	}
	if !g.RemoveSensor(serial) {
		writeError(w, http.StatusNotFound, "gateway %q has no sensor %d", g.name, serial)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func controlPushReading(w http.ResponseWriter, r *http.Request, g *Gateway) {
	serial, ok := pathSerial(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sent": g.PushReading(serial)})
}

func controlPushTemperature(w http.ResponseWriter, r *http.Request, g *Gateway) {
	serial, ok := pathSerial(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var in struct {
		Temp *float64 `json:"temp"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.Temp == nil {
		writeError(w, http.StatusBadRequest, `want {"temp": <number>}`)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sent": g.PushTemperature(serial, *in.Temp)})
}

// UpdateFaults changes the fault switches with update, applied to the
// current ones under the gateway's lock (so concurrent updates merge), and
// returns the result.
func (g *Gateway) UpdateFaults(update func(*Faults)) Faults {
	g.mu.Lock()
	f := *g.faults.Load()
	update(&f)
	g.faults.Store(&f)
	close(g.changed)
	g.changed = make(chan struct{})
	conns := g.connList()
	g.mu.Unlock()
	for _, c := range conns {
		c.startWorkers()
	}
	return f
}

var durationType = reflect.TypeFor[time.Duration]()

// faultField finds the field of Faults whose json name is name.
func faultField(name string) (reflect.StructField, bool) {
	t := reflect.TypeFor[Faults]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("json") == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// MarshalJSON writes the switches with their json names, durations as Go
// duration strings (capture_delay CaptureRealtime as "realtime") and the
// zero Encoding as "csv".
func (f Faults) MarshalJSON() ([]byte, error) {
	v := reflect.ValueOf(f)
	t := v.Type()
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range t.NumField() {
		field, value := t.Field(i), v.Field(i)
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(field.Tag.Get("json"))
		b.Write(name)
		b.WriteByte(':')
		var out any = value.Interface()
		switch {
		case field.Type == durationType:
			d := time.Duration(value.Int())
			out = d.String()
			if field.Name == "CaptureDelay" && d < 0 {
				out = "realtime"
			}
		case field.Name == "Encoding" && value.String() == "":
			out = EncodingCSV
		}
		vb, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON merges a JSON object of switches into f: fields it does
// not name keep their values; an unknown name or a bad value is an error
// and changes nothing.
func (f *Faults) UnmarshalJSON(data []byte) error {
	patch, err := parseFaultPatch(data)
	if err != nil {
		return err
	}
	patch(f)
	return nil
}

// parseFaultPatch validates a JSON object of switches and returns what
// applies it.
func parseFaultPatch(data []byte) (func(*Faults), error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, errors.New("faults: want a JSON object of fault fields")
	}
	var scratch Faults
	sv := reflect.ValueOf(&scratch).Elem()
	var set []int
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[name]
		field, ok := faultField(name)
		if !ok {
			return nil, fmt.Errorf("faults: unknown field %q", name)
		}
		dst := sv.FieldByIndex(field.Index)
		switch {
		case field.Type == durationType:
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("faults: %s: want a duration string such as \"5s\"", name)
			}
			if field.Name == "CaptureDelay" && s == "realtime" {
				dst.SetInt(int64(CaptureRealtime))
				break
			}
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("faults: %s: want a duration string such as \"5s\", got %q", name, s)
			}
			dst.SetInt(int64(d))
		case field.Name == "DropCode":
			var n int
			if err := json.Unmarshal(raw, &n); err != nil {
				return nil, fmt.Errorf("faults: %s: want a number", name)
			}
			if err := CheckDropCode(n); err != nil {
				return nil, fmt.Errorf("faults: %s: %v", name, err)
			}
			dst.SetInt(int64(n))
		case field.Name == "Encoding":
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("faults: %s: want \"csv\", \"json\" or \"base64\"", name)
			}
			e, err := ParseEncoding(s)
			if err != nil {
				return nil, fmt.Errorf("faults: %s: %v", name, err)
			}
			dst.SetString(string(e))
		default:
			if err := json.Unmarshal(raw, dst.Addr().Interface()); err != nil {
				return nil, fmt.Errorf("faults: %s: want a %s", name, field.Type)
			}
		}
		set = append(set, field.Index[0])
	}
	return func(f *Faults) {
		fv := reflect.ValueOf(f).Elem()
		for _, i := range set {
			fv.Field(i).Set(sv.Field(i))
		}
	}, nil
}
