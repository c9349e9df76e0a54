// Command gatewayd keeps one authenticated WebSocket per active CTC Connect
// Wireless gateway and serves the REST API that manages them. `gatewayd
// --help` lists its commands and every configuration variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // IANA zones for timezone validation, whatever the host has

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// commands, in the order of --help.
var commands = []struct{ name, args, help string }{
	{"serve", "", "migrate (if MIGRATE_ON_START), run the runtime and the API (the default)"},
	{"migrate", "", "apply the database migrations and exit"},
	{"token create", "--name N --role viewer|operator|admin [--expires 90d]", "create an API token and print it (shown once)"},
	{"token list", "", "list the API tokens (never their secrets)"},
	{"token revoke", "ID", "revoke an API token (refused within 5 s)"},
	{"rekey", "", "re-seal every gateway password under ENCRYPTION_KEY (resumable)"},
	{"version", "", "print the version"},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: gatewayd [--config FILE] [command]")
	fmt.Fprintln(w, "\nCommands:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.help)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nConfiguration: defaults, then --config FILE (or GATEWAYD_CONFIG; YAML, the names in lower case),")
	fmt.Fprintln(w, "then the environment. Durations take units (500ms, 10s, 1m, 2d).")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, v := range config.Variables {
		def := v.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Help)
	}
	_ = tw.Flush()
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "-v") {
		args = append([]string{"version"}, args[1:]...) // what most tools take
	}
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "configuration file")
	parse := func(args []string) ([]string, int) {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage(stdout)
				return nil, 0
			}
			fmt.Fprintf(stderr, "gatewayd: %v (see gatewayd --help)\n", err)
			return nil, 2
		}
		return fs.Args(), -1
	}
	rest, code := parse(args)
	if code >= 0 {
		return code
	}
	cmd := "serve"
	if len(rest) > 0 {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "help":
		usage(stdout)
		return 0
	case "version":
		fmt.Fprintln(stdout, "gatewayd", version)
		return 0
	case "serve", "migrate", "rekey":
		// --config may follow the command
		if rest, code = parse(rest); code >= 0 {
			return code
		}
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "gatewayd: unexpected argument %q (see gatewayd --help)\n", rest[0])
			return 2
		}
	case "token":
	default:
		fmt.Fprintf(stderr, "gatewayd: unknown command %q (see gatewayd --help)\n", cmd)
		return 2
	}
	var tokenCmd *tokenCommand
	if cmd == "token" {
		var err error
		if tokenCmd, err = parseToken(rest, configFile); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage(stdout)
				return 0
			}
			fmt.Fprintf(stderr, "gatewayd: %v (see gatewayd --help)\n", err)
			return 2
		}
	}
	cfg, err := config.Load(*configFile, environ)
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 2
	}
	logOut := logging.NewBuffered(stderr, 50*time.Millisecond)
	defer logOut.Close()
	log := logging.New(logOut, cfg.LogLevel, cfg.LogFormat, logging.Color(stderr, environ))
	// SIGHUP too: there is no configuration to reload, and the default
	// (exit at once) dropped every gateway without a close frame and left
	// readings unfinished; but not when it is ignored (nohup): catching it
	// would undo that, and closing the terminal would stop gatewayd. The
	// first signal starts a graceful stop; it also gives the signals back
	// to Go's default, so a second one ends the process at once (a stop
	// stuck on a database that does not answer, say).
	signals := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		signals = append(signals, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), signals...)
	defer stop()
	defer context.AfterFunc(ctx, stop)()
	switch cmd {
	case "migrate":
		err = migrate(ctx, cfg, log)
	case "token":
		err = tokenCmd.run(ctx, cfg, log, stdout)
	case "rekey":
		err = rekey(ctx, cfg, log, stdout)
	default:
		err = serve(ctx, cfg, log)
	}
	if err != nil && cmd == "serve" && ctx.Err() != nil {
		// Asked to stop while starting (waiting for its database, say):
		// a stop, not a failure, for a service manager too. The error is
		// what the signal cut short.
		log.Info().AnErr("cut_short", err).Msg("stopped before the start had finished")
		return 0
	}
	if err != nil {
		log.Error().Err(err).Msg("gatewayd stopped with an error")
		_ = logOut.Flush()
		if hint := hintFor(ctx, err, cfg); hint != "" {
			fmt.Fprintln(stderr, "gatewayd:", hint)
		}
		return 1
	}
	return 0
}

// hintFor says what to do about an error a newcomer meets first. A
// command interrupted by a signal gets none: its database calls end with
// errors that read as an outage.
func hintFor(ctx context.Context, err error, cfg *config.Config) string {
	switch {
	case ctx.Err() != nil:
		return ""
	case errors.Is(err, store.ErrNoDatabase):
		return fmt.Sprintf("the database in DATABASE_URL (%s) does not exist: create it, or run `make db`", config.MaskURL(cfg.DatabaseURL))
	case errors.Is(err, store.ErrSchemaBehind):
		return "run `gatewayd migrate` first (or serve with MIGRATE_ON_START=true)"
	case errors.Is(err, store.ErrSchemaAhead):
		return "run a gatewayd at least as new as the one that migrated this database"
	case errors.Is(err, store.ErrReadOnly):
		return fmt.Sprintf("the database in DATABASE_URL (%s) takes no writes (a standby, or default_transaction_read_only): point DATABASE_URL at the primary",
			config.MaskURL(cfg.DatabaseURL))
	case errors.Is(err, gatewayd.ErrNotFound):
		// Of the commands, only token revoke looks a row up by id.
		return "no token has that id: `gatewayd token list` shows them"
	case errors.Is(err, store.ErrLoginRefused):
		return fmt.Sprintf("PostgreSQL at DATABASE_URL (%s) answers and refused the login: check the user and password in DATABASE_URL (and the server's pg_hba.conf)",
			config.MaskURL(cfg.DatabaseURL))
	case errors.Is(err, store.ErrTLS):
		return fmt.Sprintf("PostgreSQL at DATABASE_URL (%s) answers, and the TLS connection failed: check sslmode (and sslrootcert) in DATABASE_URL against the server's TLS setup",
			config.MaskURL(cfg.DatabaseURL))
	case errors.Is(err, gatewayd.ErrUnavailable):
		return fmt.Sprintf("PostgreSQL at DATABASE_URL (%s) does not answer: start it, or run `make db` (a local cluster or Docker)",
			config.MaskURL(cfg.DatabaseURL))
	}
	return ""
}
