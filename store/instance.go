package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// One gatewayd runs a database's gateways at a time (DESIGN.md: one
// process). A second one on the same database (a rolling deploy's new
// process, a restart that overlaps the old one's drain) failed the first
// one's readings as interrupted, whose results were then thrown away, and
// opened a second socket to every gateway and took every scheduled
// reading twice (audit, 2026-12-06). So `serve` holds a session-level
// advisory lock on a connection of its own for its whole life; a second
// process waits for it, a standby that takes over when the first stops.
// The lock goes with the session: at once when the holder exits or is
// killed, after the server's TCP keepalive when its host vanished.
const (
	instanceLockClass = 0x67617465 // "gate"
	instanceLockID    = 0x77617964 // "wayd"
)

// ErrInstanceTaken: another process took the instance lock while this
// one's lock connection was lost.
var ErrInstanceTaken = errors.New("another gatewayd took this database's instance lock while the lock's connection was lost")

// Instance is this process's hold on the database's instance lock.
type Instance struct {
	cfg  *pgx.ConnConfig
	conn *pgx.Conn // only the goroutine that calls Watch, or Close after it, touches it
}

// AcquireInstance returns once this process holds the instance lock,
// trying every interval; waiting is told of each attempt that found the
// lock held (n from 1), to say so. It ends early only when ctx does or
// the database cannot be reached.
func AcquireInstance(ctx context.Context, pool *pgxpool.Pool, every time.Duration, waiting func(n int)) (*Instance, error) {
	in := &Instance{cfg: pool.Config().ConnConfig.Copy()}
	for n := 1; ; n++ {
		held, err := in.take(ctx)
		switch {
		case ctx.Err() != nil:
			in.drop()
			return nil, ctx.Err()
		case err != nil:
			return nil, err
		case held:
			return in, nil
		}
		waiting(n)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// take connects if need be and tries the lock once. A connection that
// did not get it is closed: it holds nothing.
func (in *Instance) take(ctx context.Context) (bool, error) {
	if in.conn == nil {
		c, err := pgx.ConnectConfig(ctx, in.cfg)
		if err != nil {
			return false, fmt.Errorf("instance lock: connect: %w", classify(err))
		}
		in.conn = c
	}
	var held bool
	err := in.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1::int4, $2::int4)`, instanceLockClass, instanceLockID).Scan(&held)
	if err != nil || !held {
		in.drop()
	}
	if err != nil {
		return false, fmt.Errorf("instance lock: %w", classify(err))
	}
	return held, nil
}

// drop closes the connection, and with it the lock if it held it.
func (in *Instance) drop() {
	if in.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = in.conn.Close(ctx)
	in.conn = nil
}

// Watch checks the lock's connection every interval until ctx ends (nil)
// or the lock is lost to another process (ErrInstanceTaken). A lost
// connection (the database restarted, the network broke) lost the lock
// with it: Watch reconnects and takes it again, and only a process that
// took it meanwhile makes this one give up. While the database cannot be
// reached nobody can take it, and Watch keeps trying; lost is told of
// each failed check (nil once the lock is held again), to say so.
func (in *Instance) Watch(ctx context.Context, every time.Duration, lost func(error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// No deadline of its own: pgx closes a connection whose query a
		// deadline cuts short, and closing it gives the lock away. A
		// database that is slow to answer keeps the session, and the lock
		// with it; a broken connection fails the ping by itself.
		err := in.check(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrInstanceTaken):
			return err
		case err != nil:
			failing = true
			lost(err)
		case failing:
			failing = false
			lost(nil)
		}
	}
}

// check pings the lock's connection, or reconnects and takes the lock
// again when there is none.
func (in *Instance) check(ctx context.Context) error {
	if in.conn != nil {
		if err := in.conn.Ping(ctx); err == nil {
			return nil
		}
		in.drop()
	}
	held, err := in.take(ctx)
	switch {
	case err != nil:
		return err
	case !held:
		return ErrInstanceTaken
	}
	return nil
}

// Close releases the lock (its connection closes). Call it after Watch
// has returned.
func (in *Instance) Close() { in.drop() }
