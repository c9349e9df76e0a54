package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/duration"
	"github.com/ctcgw/gatewayd/store"
)

// tokenCommand is `gatewayd token create|list|revoke`.
type tokenCommand struct {
	verb    string
	name    string
	role    gatewayd.Role
	expires time.Duration
	id      uuid.UUID
}

func parseToken(args []string, configFile *string) (*tokenCommand, error) {
	if len(args) == 0 {
		return nil, errors.New("token needs create, list or revoke")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return nil, flag.ErrHelp
	}
	t := &tokenCommand{verb: args[0]}
	fs := flag.NewFlagSet("token "+t.verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(configFile, "config", *configFile, "configuration file")
	name := fs.String("name", "", "the token's name")
	role := fs.String("role", "", "viewer, operator or admin")
	expires := fs.String("expires", "", "a lifetime such as 90d (default: never)")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	switch t.verb {
	case "create":
		t.name, t.role = *name, gatewayd.Role(*role)
		// As the API counts: characters, not bytes (200 × "é" is 400
		// bytes), and UTF-8 without NUL, which PostgreSQL refuses.
		if t.name == "" || !utf8.ValidString(t.name) || utf8.RuneCountInString(t.name) > 255 || strings.ContainsRune(t.name, 0) ||
			strings.TrimFunc(t.name, unicode.IsSpace) == "" {
			return nil, errors.New("token create needs --name (1-255 characters of UTF-8, not all white space, no NUL)")
		}
		if !t.role.Valid() {
			return nil, errors.New("token create needs --role viewer, operator or admin")
		}
		if *expires != "" {
			d, err := duration.Parse(*expires)
			if err != nil || d <= 0 || d > gatewayd.MaxTokenLife {
				return nil, fmt.Errorf("--expires %q is not a duration such as 90d, up to 3660d", *expires)
			}
			t.expires = d
		}
	case "list":
	case "revoke":
		if fs.NArg() != 1 {
			return nil, errors.New("token revoke needs the token's id")
		}
		id, err := uuid.Parse(fs.Arg(0))
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", fs.Arg(0))
		}
		t.id = id
		return t, nil
	default:
		return nil, fmt.Errorf("unknown token command %q (create, list, revoke)", t.verb)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return t, nil
}

func (t *tokenCommand) run(ctx context.Context, cfg *config.Config, log zerolog.Logger, out io.Writer) error {
	st, closeDB, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	switch t.verb {
	case "create":
		var expires *time.Time
		if t.expires > 0 {
			at := time.Now().Add(t.expires)
			expires = &at
		}
		tok, secret, err := st.CreateToken(ctx, t.name, t.role, expires)
		if err != nil {
			return err
		}
		// The database, masked, as migrate names it: a token made in
		// another database than the service's (a DATABASE_URL left out of
		// a new shell) is refused with 401 and nothing else says why.
		log.Info().Str("token_id", tok.ID.String()).Str("name", tok.Name).Str("role", string(tok.Role)).
			Str("database", config.MaskURL(cfg.DatabaseURL)).Msg("API token created")
		fmt.Fprintln(out, secret) // the only time it is shown
	case "list":
		list, _, err := st.ListTokens(ctx, store.Page{Limit: math.MaxInt32})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
		for _, x := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, printable(x.Name), x.Role, stamp(&x.CreatedAt), stamp(x.LastUsedAt),
				stamp(x.ExpiresAt), stamp(x.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		tok, err := st.RevokeToken(ctx, t.id)
		if err != nil {
			return err
		}
		log.Info().Str("token_id", tok.ID.String()).Str("name", tok.Name).
			Str("database", config.MaskURL(cfg.DatabaseURL)).Msg("API token revoked")
	}
	return nil
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// rekey re-seals every gateway password under ENCRYPTION_KEY.
func rekey(ctx context.Context, cfg *config.Config, log zerolog.Logger, out io.Writer) error {
	st, closeDB, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	res, err := st.Rekey(ctx, 500, func(r store.RekeyResult) {
		log.Info().Int("resealed", r.Resealed).Int("current", r.Current).Int("unreadable", len(r.Unreadable)).Msg("rekey progress")
	})
	fmt.Fprintf(out, "resealed %d, already current %d, unreadable %d\n", res.Resealed, res.Current, len(res.Unreadable))
	for _, g := range res.Unreadable {
		fmt.Fprintf(out, "no configured key opens the password of gateway %s: set it again (PUT /api/gateways/%s)\n", g.GatewayID, g.ID)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("rekey interrupted: run it again, it resumes (%w)", context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("%w (run rekey again: it resumes)", err)
	}
	if len(res.Unreadable) > 0 {
		// A script running rekey before dropping the old key must notice.
		if len(res.Unreadable) == 1 {
			return errors.New("1 gateway password is under no configured key")
		}
		return fmt.Errorf("%d gateway passwords are under no configured key", len(res.Unreadable))
	}
	return nil
}

// openStore connects for a command, migrating first as serve would, but
// only while no serve runs on the database (it holds the instance lock):
// a newer binary's token create migrated the schema under an older serve
// (found by an audit, helper 5). With a serve running, a schema behind
// this binary's is refused with the hint to migrate.
func openStore(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*store.Store, func(), error) {
	pool, err := connect(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	migrate := cfg.MigrateOnStart
	if migrate {
		in, held, err := store.TryInstance(ctx, pool)
		if err != nil {
			pool.Close()
			return nil, nil, err
		}
		if held {
			defer in.Close() // released once migrated: the command itself runs no gateways
		}
		migrate = held
	}
	if _, err := store.Prepare(ctx, pool, migrate); err != nil {
		pool.Close()
		return nil, nil, err
	}
	sealer, err := store.NewSealer(cfg.EncryptionKey, cfg.PreviousKeys...)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store.New(pool, sealer), pool.Close, nil
}

// printable is name as the table can show it: quoted, escapes and all,
// when it holds a control character (a tab or a newline, which the API
// accepts, would break the table's columns or rows).
func printable(name string) string {
	if strings.IndexFunc(name, unicode.IsControl) < 0 {
		return name
	}
	return strconv.Quote(name)
}
