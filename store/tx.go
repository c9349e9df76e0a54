package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// txAttempts bounds how often a transaction PostgreSQL aborted to break
// a deadlock is run again.
const txAttempts = 3

// inTx runs fn in a transaction, and again (txAttempts in all) when
// PostgreSQL aborted it to break a deadlock (40P01). Cascade deletes and
// the writer's sensor merges lock the same gateways' and sensors' rows
// in orders no single statement controls: an upsert's foreign-key checks
// take key-share locks on gateways at its statement's end, after the
// sensor rows it updated, while a deletion holds its gateways first and
// then waits for their sensors (found by an audit, helper 5). Locking
// every gateway of a merge up front, the order-proof alternative, cost
// PostgreSQL a tuple lock per gateway per flush (see orphanSweep); the
// cycle is rare, and running the loser again finds the winner done. fn
// must set everything it returns anew on each run.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return againIfDeadlocked(ctx, func() error { return pgx.BeginFunc(ctx, s.pool, fn) })
}

// againIfDeadlocked runs write, and again (txAttempts in all) while
// PostgreSQL aborts it to break a deadlock; see inTx.
//
// It waits a little before each new attempt (20 ms, then 40): run again at
// once, the loser could take its first lock back before the winner, which
// it woke by aborting, had taken it, and meet it in the same cycle again;
// a deletion beside a discovery merge lost all three attempts so on a
// loaded box.
func againIfDeadlocked(ctx context.Context, write func() error) error {
	for attempt := 1; ; attempt++ {
		err := write()
		var pgErr *pgconn.PgError
		if err == nil || attempt == txAttempts || ctx.Err() != nil ||
			!errors.As(err, &pgErr) || pgErr.Code != "40P01" { // deadlock_detected
			return err
		}
		pause := time.NewTimer(time.Duration(attempt) * 20 * time.Millisecond)
		select {
		case <-ctx.Done():
			pause.Stop()
			return err
		case <-pause.C:
		}
	}
}
