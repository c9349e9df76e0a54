// Command ctcsim serves simulated CTC Connect Wireless gateways for demos,
// tests and load runs. Every gateway has its own path on one listener:
// ws://HOST:PORT/gw/<name>. It prints one line per gateway (name, then URL)
// and runs until SIGINT or SIGTERM. The same listener serves a control
// surface (http://HOST:PORT/control) to change a running gateway's faults
// and sensors. `ctcsim --help` documents the flags, the control surface
// and the synthetic signals of the readings.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageHead = `Usage: ctcsim [flags]

Serves N simulated CTC Connect Wireless gateways on one listener, one path
each: ws://HOST:PORT/gw/<prefix>-<n> (n zero-padded to the width of N).
Prints "<name> <url>" per gateway on stdout, then serves until SIGINT or
SIGTERM. All gateways share the credentials, the sensors and the flags'
fault switches; the control surface changes one gateway at a time.

Flags:
`

const usageTail = `
Control surface (same listener, JSON):

  GET    /control                              every gateway: name, url, open, accepted, logins
  GET    /control/<name>                       faults, sensors, stats (last 10 frames)
  POST   /control/<name>                       merge fault fields (snake_case, durations as "5s")
  POST   /control/<name>/drop[?code=1001]      close its sockets (no code: abruptly)
  POST   /control/<name>/sensors               add or replace a sensor {"serial","name",
                                               "part_num","read_rate","samples","connected"}
  DELETE /control/<name>/sensors/<serial>      remove a sensor
  POST   /control/<name>/readings/<serial>     push an unsolicited NOT_DYN_READING
  POST   /control/<name>/temperature/<serial>  push NOT_DYN_TEMP {"temp": 25.5}

  Unknown gateway: 404; unknown field or bad value: 400 {"error": "..."}.
  Fault fields: refuse_logins ignore_logins drop_after drop_code garbage
  garbage_every stall_handshake withhold_pongs temp_every ignore_discovery
  garbage_discovery discovery_delay start_delay capture_delay ("realtime" or
  a duration)
  encoding (csv|json|base64) refuse_readings refusal_text never_deliver_readings
  malformed_samples drop_mid_capture ignore_take_reading flood flood_frame
  oversize_after_login login_error_size.

  Examples (A=127.0.0.1:PORT, gateway gw-1):
    curl -s http://A/control
    curl -s http://A/control/gw-1
    curl -s -X POST http://A/control/gw-1 -d '{"refuse_logins":true}'
    curl -s -X POST http://A/control/gw-1 -d '{"refuse_logins":false,"encoding":"base64"}'
    curl -s -X POST http://A/control/gw-1 -d '{"drop_after":"5s","drop_code":1001}'
    curl -s -X POST 'http://A/control/gw-1/drop?code=1001'
    curl -s -X POST http://A/control/gw-1/sensors -d '{"serial":20001,"name":"Press"}'
    curl -s -X DELETE http://A/control/gw-1/sensors/20001
    curl -s -X POST http://A/control/gw-1/readings/10001
    curl -s -X POST http://A/control/gw-1/temperature/10001 -d '{"temp":25.5}'

Sensors (--sensors N): sensor k = 1..N has serial 10000+k, name
"<machine> k" (Pump 1, Fan 2, Compressor 3, Motor 4, Gearbox 5, Blower 6,
Conveyor 7, Mixer 8, Pump 9, ...), PartNum TA-CE-WS-1, ReadRate 25600 Hz,
Samples 8192 per axis (a capture lasts 8192/25600 s = 320 ms).

Readings: every sample of an axis, in g, at rate = ReadRate:

  v[i] = offset + A·sin(2π·f·i/rate) + noise,  noise uniform in ±0.005 g
                                               (RMS 0.0029 g, fixed per serial)
  with k = ((serial − 1) mod 8) + 1:
    X: A = 0.5 g, f =  50·k Hz, offset 0
    Y: A = 0.3 g, f = 100·k Hz, offset 0
    Z: A = 0.2 g, f =  25·k Hz, offset 1 g (gravity)

  Every f is a multiple of 25 Hz: a whole number of periods in 8192 samples
  at 25600 Hz, on an exact FFT bin (3.125 Hz). A sensor added with a lower
  ReadRate gets each f halved until it is below ReadRate/2.56.

  So a reading's summary, per axis (the noise moves rms by under 0.0002 g
  and adds up to 0.006 g to peak):
    mean                 = offset
    rms (mean removed)   = A/√2
    peak                 ≈ A, crest factor ≈ √2 = 1.414
    dominant frequency   = f
    velocity RMS (mm/s)  = A·9.80665/(2π·f)/√2 × 1000

    serial 10001 (k=1): X rms 0.3536 g, 50 Hz, 11.04 mm/s
                        Y rms 0.2121 g, 100 Hz, 3.31 mm/s
                        Z mean 1 g, rms 0.1414 g, 25 Hz, 8.83 mm/s
    serial 10002 (k=2): X 0.3536 g, 100 Hz, 5.52 mm/s; Y 0.2121 g, 200 Hz,
                        1.66 mm/s; Z 0.1414 g, 50 Hz, 4.41 mm/s

  Encodings (--encoding): csv = "0.01234,-0.49998,..." (g, 5 decimals);
  json = "[0.01234,-0.49998,...]"; base64 = little-endian int16 milli-g.

Temperatures: every --temp-every, each subscribed socket gets NOT_DYN_TEMP
per sensor: 20 + (serial mod 10) + 0.5·sin(2π·n/16) °C, rounded to 0.1,
n = 0, 1, ... the push count on that socket (serial 10001 starts at 21.0).
`

// captureFlag is --capture-delay: "realtime" or a duration.
type captureFlag struct{ d time.Duration }

func (c *captureFlag) String() string {
	if c.d == ctctest.CaptureRealtime {
		return "realtime"
	}
	return c.d.String()
}

func (c *captureFlag) Set(s string) error {
	if s == "realtime" {
		c.d = ctctest.CaptureRealtime
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return errors.New(`want "realtime" or a duration such as 0s or 100ms`)
	}
	c.d = d
	return nil
}

// run is ctcsim: it returns the exit code (0 done or --help, 1 failed,
// 2 bad usage) and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctcsim", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and usage are printed below
	usage := func(w io.Writer) {
		fmt.Fprint(w, usageHead)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(w, usageTail)
	}

	listen := fs.String("listen", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	tlsCert := fs.String("tls-cert", "", "serve wss:// with this PEM certificate (chain) file; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	n := fs.Int("gateways", 1, "number of gateways")
	prefix := fs.String("prefix", "gw", "gateway name prefix")
	email := fs.String("email", "operator@example.com", "login e-mail every gateway accepts")
	password := fs.String("password", "secret", "login password every gateway accepts")
	keep := fs.Int("keep-records", 1000, "frames and close codes each gateway records (0 for long load runs)")
	sensors := fs.Int("sensors", 2, "sensors per gateway (serials 10001...; 0: GET_DYN_CONNECTED answers [])")
	encoding := fs.String("encoding", "csv", "sample encoding of readings: csv, json or base64")
	startDelay := fs.Duration("start-delay", 20*time.Millisecond, "wait between TAKE_DYN_READING's answer and NOT_DYN_READING_STARTED")
	capture := captureFlag{d: ctctest.CaptureRealtime}
	fs.Var(&capture, "capture-delay", `wait between NOT_DYN_READING_STARTED and NOT_DYN_READING: "realtime" (Samples/ReadRate) or a duration`)
	tempEvery := fs.Duration("temp-every", 30*time.Second, "push NOT_DYN_TEMP per sensor this often on subscribed sockets (0: never)")

	refuse := fs.Bool("refuse-logins", false, "answer every login with RTN_ERR")
	ignore := fs.Bool("ignore-logins", false, "never answer logins")
	dropAfter := fs.Duration("drop-after", 0, "close each connection this long after it opened (0: never)")
	dropCode := fs.Int("drop-code", 1001, "close code for --drop-after (0: drop TCP without a close frame)")
	garbage := fs.Bool("garbage", false, "send garbage and unknown frames while connected")
	garbageEvery := fs.Duration("garbage-every", 20*time.Millisecond, "interval of --garbage frames")
	stall := fs.Bool("stall-handshake", false, "never complete the WebSocket handshake")
	noPong := fs.Bool("withhold-pongs", false, "do not answer WebSocket pings")
	ignoreDiscovery := fs.Bool("ignore-discovery", false, "never answer GET_DYN_CONNECTED")
	garbageDiscovery := fs.Bool("garbage-discovery", false, `answer GET_DYN_CONNECTED with "oops" and {"1":"x"} in turn`)
	refuseReadings := fs.Bool("refuse-readings", false, `answer readings with NOT_DYN_READING_STARTED Success false, Error "Sensor busy"`)
	neverDeliver := fs.Bool("never-deliver-readings", false, "start readings but never send NOT_DYN_READING")
	malformed := fs.Bool("malformed-samples", false, "send readings with Y one sample short and a non-number in Z")
	dropMid := fs.Bool("drop-mid-capture", false, "close the socket abruptly right after NOT_DYN_READING_STARTED")
	ignoreTake := fs.Bool("ignore-take-reading", false, "never answer TAKE_DYN_READING")
	flood := fs.Bool("flood", false, "after login, send small unknown frames as fast as the socket takes them")
	oversize := fs.Int("oversize-after-login", 0, "after each login, send one frame of this many bytes (0: none)")
	loginErrorSize := fs.Int("login-error-size", 0, "refuse logins with an Error text of this many bytes (0: normal logins)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "ctcsim: %v\nRun ctcsim --help for usage.\n", err)
		return 2
	}
	enc, err := ctctest.ParseEncoding(*encoding)
	dropErr := ctctest.CheckDropCode(*dropCode)
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments: %v", fs.Args())
	case err != nil:
	case *n < 1:
		err = errors.New("--gateways must be at least 1")
	case *sensors < 0:
		err = errors.New("--sensors must not be negative")
	case *oversize < 0 || *loginErrorSize < 0:
		err = errors.New("sizes must not be negative")
	case (*tlsCert == "") != (*tlsKey == ""):
		err = errors.New("--tls-cert and --tls-key go together")
	case dropErr != nil:
		err = fmt.Errorf("--drop-code: %w", dropErr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ctcsim: %v\nRun ctcsim --help for usage.\n", err)
		return 2
	}

	var tlsCfg *tls.Config
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintln(stderr, "ctcsim: TLS certificate:", err)
			return 2
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := ctctest.NewTLSServer(*listen, tlsCfg)
	if err != nil {
		fmt.Fprintln(stderr, "ctcsim:", err)
		return 1
	}
	srv.KeepRecords(*keep)
	faults := ctctest.Faults{
		RefuseLogins: *refuse, IgnoreLogins: *ignore, DropAfter: *dropAfter, DropCode: *dropCode,
		Garbage: *garbage, GarbageEvery: *garbageEvery, StallHandshake: *stall, WithholdPongs: *noPong,
		TempEvery: *tempEvery, IgnoreDiscovery: *ignoreDiscovery, GarbageDiscovery: *garbageDiscovery,
		StartDelay: *startDelay, CaptureDelay: capture.d, Encoding: enc,
		RefuseReadings: *refuseReadings, NeverDeliverReadings: *neverDeliver, MalformedSamples: *malformed,
		DropMidCapture: *dropMid, IgnoreTakeReading: *ignoreTake,
		Flood: *flood, OversizeAfterLogin: *oversize, LoginErrorSize: *loginErrorSize,
	}
	out := bufio.NewWriter(stdout)
	width := len(fmt.Sprint(*n))
	for i := 1; i <= *n; i++ {
		name := fmt.Sprintf("%s-%0*d", *prefix, width, i)
		g := srv.Add(name, ctctest.Config{Email: *email, Password: *password, Sensors: ctctest.DefaultSensors(*sensors)})
		g.SetFaults(faults)
		fmt.Fprintf(out, "%s %s\n", name, g.URL())
	}
	if err := out.Flush(); err != nil {
		srv.Close()
		fmt.Fprintln(stderr, "ctcsim:", err)
		return 1
	}
	control := "http://"
	if tlsCfg != nil {
		control = "https://"
	}
	fmt.Fprintf(stderr, "ctcsim: serving %d gateways on %s, control on %s%s/control; Ctrl-C stops\n", *n, srv.Addr(), control, srv.Addr())

	<-ctx.Done()
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
		return 0
	case <-time.After(5 * time.Second):
		fmt.Fprintln(stderr, "ctcsim: shutdown took longer than 5s")
		return 1
	}
}
