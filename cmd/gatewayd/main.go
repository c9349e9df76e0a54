// Command gatewayd keeps one authenticated WebSocket per active CTC Connect
// Wireless gateway and serves the REST API that manages them.
//
//	gatewayd [--config FILE] [serve]   migrate (if enabled), run the runtime and the API
//	gatewayd [--config FILE] migrate   apply migrations and exit
//	gatewayd version                   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // IANA zones for timezone validation, whatever the host has

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/store"
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
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
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

// connect opens the pool, retrying for a while so gatewayd can start
// alongside its database.
func connect(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*pgxpool.Pool, error) {
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 1; ; attempt++ {
		pool, err := store.Connect(ctx, cfg.DatabaseURL, 5*time.Second)
		if err == nil {
			return pool, nil
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			return nil, err
		}
		log.Warn().Err(err).Int("attempt", attempt).Str("database", config.MaskURL(cfg.DatabaseURL)).Msg("database not reachable yet; retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func migrate(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	pool, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	v, err := store.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	log.Info().Int32("version", v).Str("database", config.MaskURL(cfg.DatabaseURL)).Msg("migrations applied")
	return nil
}

func serve(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	started := time.Now()
	log.Info().Str("version", version).Str("database", config.MaskURL(cfg.DatabaseURL)).Str("addr", cfg.Addr()).
		Bool("chaos", cfg.ChaosEnabled).Msg("gatewayd starting")
	pool, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.MigrateOnStart {
		v, err := store.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		log.Info().Int32("version", v).Msg("migrations applied")
	}
	sealer, err := store.NewSealer(cfg.EncryptionKey)
	if err != nil {
		return err
	}
	st := store.New(pool, sealer)
	rt := actors.Start(cfg.Gateway, st, log, actors.Options{ReconcileInterval: cfg.ReconcileInterval})
	app := api.New(st, rt, log, api.Options{CORSOrigins: cfg.CORSOrigins, ChaosEnabled: cfg.ChaosEnabled, Started: started})

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		shutdownRuntime(rt, cfg.ShutdownTimeout, log)
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg("API listening")

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		shutdownRuntime(rt, cfg.ShutdownTimeout, log)
		return fmt.Errorf("http server: %w", err)
	}
	log.Info().Dur("timeout", cfg.ShutdownTimeout).Msg("shutting down")
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	// Stop taking requests first, then close every gateway with code 1000.
	if err := app.ShutdownWithTimeout(time.Until(deadline) / 2); err != nil {
		log.Warn().Err(err).Msg("HTTP shutdown did not finish in time")
	}
	<-serveErr
	shutdownRuntime(rt, time.Until(deadline), log)
	log.Info().Msg("stopped")
	return nil
}

func shutdownRuntime(rt *actors.Runtime, timeout time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, 100*time.Millisecond))
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("runtime did not stop in time")
	}
}
