// Command ctcsim serves simulated CTC Connect Wireless gateways for demos,
// tests and load runs. Every gateway has its own path on one listener:
// ws://HOST:PORT/gw/<name>. It prints one line per gateway (name, then URL)
// and runs until SIGINT or SIGTERM.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ctcsim:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("ctcsim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: ctcsim [flags]

Serves N simulated CTC Connect Wireless gateways on one listener, one path
each: ws://HOST:PORT/gw/<prefix>-<n>. Prints "<name> <url>" per gateway.
All gateways share the credentials; fault switches apply to every gateway.

Flags:
`)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	n := fs.Int("gateways", 1, "number of gateways")
	prefix := fs.String("prefix", "gw", "gateway name prefix")
	email := fs.String("email", "operator@example.com", "login e-mail every gateway accepts")
	password := fs.String("password", "secret", "login password every gateway accepts")
	refuse := fs.Bool("refuse-logins", false, "answer every login with RTN_ERR")
	ignore := fs.Bool("ignore-logins", false, "never answer logins")
	dropAfter := fs.Duration("drop-after", 0, "close each connection this long after it opened (0: never)")
	dropCode := fs.Int("drop-code", 1001, "close code for --drop-after (0: drop TCP without a close frame)")
	garbage := fs.Bool("garbage", false, "send garbage and unknown frames while connected")
	stall := fs.Bool("stall-handshake", false, "never complete the WebSocket handshake")
	noPong := fs.Bool("withhold-pongs", false, "do not answer WebSocket pings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("--gateways must be at least 1")
	}
	srv, err := ctctest.NewServer(*listen)
	if err != nil {
		return err
	}
	defer srv.Close()
	faults := ctctest.Faults{RefuseLogins: *refuse, IgnoreLogins: *ignore, DropAfter: *dropAfter, DropCode: *dropCode,
		Garbage: *garbage, StallHandshake: *stall, WithholdPongs: *noPong}
	out := bufio.NewWriter(os.Stdout)
	width := len(fmt.Sprint(*n))
	for i := 1; i <= *n; i++ {
		name := fmt.Sprintf("%s-%0*d", *prefix, width, i)
		g := srv.Add(name, ctctest.Config{Email: *email, Password: *password})
		g.SetFaults(faults)
		fmt.Fprintf(out, "%s %s\n", name, g.URL())
	}
	if err := out.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ctcsim: serving %d gateways on %s; Ctrl-C stops\n", *n, srv.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	signal.Stop(sig)
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("shutdown took longer than 5s")
	}
	return nil
}
