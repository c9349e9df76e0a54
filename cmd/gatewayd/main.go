// Command gatewayd keeps one authenticated WebSocket per active CTC Connect
// Wireless gateway and serves the REST API that manages them.
//
//	gatewayd [--config FILE] [serve]   migrate (if enabled), run the runtime and the API
//	gatewayd [--config FILE] migrate   apply migrations and exit
//	gatewayd version                   print the version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // IANA zones for timezone validation, whatever the host has

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/logging"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "configuration file (YAML; keys are the variable names in lower case)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatewayd [--config FILE] [serve|migrate|version]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := "serve"
	if fs.NArg() > 0 {
		cmd = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil { // flags may follow the sub-command
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "gatewayd: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "gatewayd", version)
		return 0
	case "serve", "migrate":
	default:
		fmt.Fprintf(stderr, "gatewayd: unknown command %q (serve, migrate, version)\n", cmd)
		return 2
	}
	cfg, err := config.Load(*configFile, environ)
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 2
	}
	logOut := logging.NewBuffered(stderr, 50*time.Millisecond)
	defer logOut.Close()
	log := logging.New(logOut, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cmd == "migrate" {
		err = migrate(ctx, cfg, log)
	} else {
		err = serve(ctx, cfg, log)
	}
	if err != nil {
		log.Error().Err(err).Msg("gatewayd stopped with an error")
		return 1
	}
	return 0
}
