// Command ensuredb is a development helper for `make db`: with -check it
// exits 0 when the PostgreSQL server of DATABASE_URL answers (and prints
// "refused: why" when it answers and refuses the login or the TLS); with -url it
// prints the URL it would use (DATABASE_URL, else GATEWAYD_CONFIG's file's
// database_url, else gatewayd's default);
// with -drop-test-databases it drops the databases the tests keep between
// runs (internal/testdb); without any, it waits for the server (up to
// -wait) and creates DATABASE_URL's database if it is missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/store"
)

func main() {
	check := flag.Bool("check", false, "only check that the server answers")
	printURL := flag.Bool("url", false, "print the database URL and exit")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait for the server")
	dropTest := flag.Bool("drop-test-databases", false, "drop the databases the tests keep between runs (gwt_*)")
	flag.Parse()
	// gatewayd's own DATABASE_URL: the environment's, else the file
	// GATEWAYD_CONFIG names, else the default.
	raw, err := config.DatabaseURL(os.Environ())
	if err != nil {
		fail(err.Error())
	}
	if *printURL {
		fmt.Println(raw)
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		fail("DATABASE_URL cannot be parsed")
	}
	name := strings.TrimPrefix(u.Path, "/")
	// pool_max_conns and the like were sent to the server, which refused
	// them: a PostgreSQL that answers was taken for one that does not.
	admin := config.OneConnection(*u)
	admin.Path = "/postgres"
	if *check {
		*wait = 0
	}
	deadline := time.Now().Add(*wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		conn, err := pgx.Connect(ctx, admin.String())
		cancel()
		if err == nil {
			defer conn.Close(context.Background())
			switch {
			case *check:
			case *dropTest:
				dropTestDatabases(conn)
			default:
				ensure(conn, name)
			}
			return
		}
		if why := store.ConnectRefusal(err); why != nil {
			// The server answers: waiting, or starting another one on its
			// port (what make db does when no server answers), cannot
			// help. make db reads this line from -check (found by an
			// audit, helper 4).
			if *check {
				fmt.Printf("refused: %v\n", why)
				os.Exit(1)
			}
			fail(fmt.Sprintf("PostgreSQL at %s answers and refused: %v", config.MaskURL(admin.String()), err))
		}
		if time.Now().After(deadline) {
			if *check {
				os.Exit(1)
			}
			fail(fmt.Sprintf("PostgreSQL at %s does not answer: %v", config.MaskURL(admin.String()), err))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func ensure(conn *pgx.Conn, name string) {
	ctx := context.Background()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		fail(err.Error())
	}
	if exists {
		return
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		fail(err.Error())
	}
	fmt.Printf("created database %s\n", name)
}

// dropTestDatabases drops internal/testdb's databases (its Prefix, gwt_).
// One a test process is using is reported and left.
func dropTestDatabases(conn *pgx.Conn) {
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'gwt\_%' ORDER BY datname`)
	if err != nil {
		fail(err.Error())
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		fail(err.Error())
	}
	failed := false
	for _, name := range names {
		if _, err := conn.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
			fmt.Fprintf(os.Stderr, "ensuredb: %s: %v\n", name, err)
			failed = true
			continue
		}
		fmt.Printf("dropped %s\n", name)
	}
	if failed {
		os.Exit(1)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "ensuredb:", msg)
	os.Exit(1)
}
