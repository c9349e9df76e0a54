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
// killed, or its connection is reset; PostgreSQL keeps the session of a
// peer that went silent (a host that vanished, a network that drops
// packets) until its TCP keepalive gives up.
//
// A waiting standby also holds a shared advisory lock (instanceStandbyID)
// while it waits, so the running process sees, at each check, that one
// waits. That process, once its lock session is lost and it cannot take
// the lock again at once, stands down (ErrInstanceFenced): the standby
// may hold the lock by then, and would dial every gateway after its grace
// while this process, cut off from the database, kept its sockets (audit,
// 2026-12-06 ninth session). Alone, a process rides the outage instead:
// no one can take its gateways.
const (
	instanceLockClass = 0x67617465 // "gate"
	instanceLockID    = 0x77617964 // "wayd"
	instanceStandbyID = 0x73746279 // "stby"
	// newSensorsLockID (in instanceLockClass) is not the instance's: it
	// serialises the inserts of new sensors (lockForNewSensors).
	newSensorsLockID = 0x73656e73 // "sens"
	// InstanceApplication names the lock's connection in pg_stat_activity.
	InstanceApplication = "gatewayd instance lock"
)

// ErrInstanceTaken: another process took the instance lock while this
// one's lock connection was lost.
var ErrInstanceTaken = errors.New("another gatewayd took this database's instance lock while the lock's connection was lost")

// ErrInstanceFenced: the lock's connection was lost while a standby
// waited, and the lock could not be taken again at once: the standby may
// hold it now.
var ErrInstanceFenced = errors.New("the instance lock's connection was lost while another gatewayd waited to take over; standing down for it")

// Instance is this process's hold on the database's instance lock. Only
// one goroutine at a time uses it: AcquireInstance's, then Watch's, then
// Close after Watch has returned.
type Instance struct {
	cfg  *pgx.ConnConfig
	conn *pgx.Conn
	// held: conn holds the lock. lostPID is the server process of a lock
	// connection this process lost while holding the lock: a session the
	// server may still keep (the network dropped it silently), holding
	// the lock against this very process.
	held    bool
	lostPID uint32
	// standby: conn holds the shared standby lock (a waiting process).
	// standbySeen: at the last check, some other process waited.
	standby     bool
	standbySeen bool
}

// AcquireInstance returns once this process holds the instance lock,
// trying every interval; waiting is told of each attempt that did not get
// it (n from 1): held by another process (err nil), or the database could
// not be reached (err). It ends early only when ctx does: a standby rides
// out a database outage as the running instance does.
func AcquireInstance(ctx context.Context, pool *pgxpool.Pool, every time.Duration, waiting func(n int, err error)) (*Instance, error) {
	in := newInstance(pool)
	for n := 1; ; n++ {
		err := in.take(ctx)
		if err == nil {
			err = in.sayWaiting(ctx)
		}
		switch {
		case ctx.Err() != nil:
			in.drop()
			return nil, ctx.Err()
		case err == nil && in.held:
			return in, nil
		}
		waiting(n, err)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			in.drop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// newInstance is a hold not yet taken, on connections of its own named
// InstanceApplication.
func newInstance(pool *pgxpool.Pool) *Instance {
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = InstanceApplication
	return &Instance{cfg: cfg}
}

// instanceKeepalive makes the server give up on the lock's session within
// seconds of a silent cut (no reset from either side), not after its
// default two hours: the lock comes free for a standby that reaches the
// server, while the process it belonged to, cut off, stands down (Watch).
// A probe after 5 s of silence, given up after 3 more unanswered (2 s
// apart), or when data sent stays unacknowledged for 10 s. Set once
// connected, not as startup parameters, which a session pooler such as
// PgBouncer refuses (found by an audit, helper 12); what refuses the SET
// (or a Unix socket, which ignores it) leaves the server's own settings.
const instanceKeepalive = `SELECT set_config('tcp_keepalives_idle', '5', false),
	set_config('tcp_keepalives_interval', '2', false), set_config('tcp_keepalives_count', '3', false),
	set_config('tcp_user_timeout', '10000', false)`

// standbyCheckTimeout bounds the lock check while a standby waits: a
// check that does not answer in time means this process is cut off from
// the server, which ends the session soon after (instanceKeepalive) and
// gives the lock to the standby. The process stands down first, well
// within the standby's 5 s grace; without the bound, a silently cut
// process never learned it had lost the lock and kept every gateway's
// socket while the standby opened its own (found by an audit, helper 10).
const standbyCheckTimeout = 2 * time.Second

// TryInstance tries the instance lock once, for a command that must not
// act while a serve runs (migrations under a running process): held is
// false, and the Instance nil, when another process holds the lock.
func TryInstance(ctx context.Context, pool *pgxpool.Pool) (in *Instance, held bool, err error) {
	in = newInstance(pool)
	if err := in.take(ctx); err != nil {
		return nil, false, err
	}
	if !in.held {
		in.drop()
		return nil, false, nil
	}
	return in, true, nil
}

// sayWaiting holds the shared standby lock while the instance lock is
// another process's, and lets it go once this one holds the instance
// lock: else the process that later waits for this one would count this
// one as waiting. A failure drops the connection (and with it any lock).
func (in *Instance) sayWaiting(ctx context.Context) error {
	q := ""
	switch {
	case !in.held && !in.standby:
		q = `SELECT pg_try_advisory_lock_shared($1::int4, $2::int4)` // shared: granted at once
	case in.held && in.standby:
		q = `SELECT pg_advisory_unlock_shared($1::int4, $2::int4)`
	default:
		return nil
	}
	if _, err := in.conn.Exec(ctx, q, instanceLockClass, instanceStandbyID); err != nil {
		in.drop()
		return fmt.Errorf("instance lock: standby: %w", classify(err))
	}
	in.standby = !in.held
	return nil
}

// take connects if need be and tries the lock once; held says whether it
// got it. A session of this process's that the server still keeps from a
// lost connection is ended first, so the process is not locked out by
// itself for as long as the server's keepalive takes.
func (in *Instance) take(ctx context.Context) error {
	if in.conn == nil {
		c, err := pgx.ConnectConfig(ctx, in.cfg)
		if err != nil {
			return fmt.Errorf("instance lock: connect: %w", classify(err))
		}
		in.conn = c
		if _, err := c.Exec(ctx, instanceKeepalive); err != nil && c.IsClosed() {
			in.drop()
			return fmt.Errorf("instance lock: %w", classify(err))
		}
	}
	if in.lostPID != 0 {
		// Ours only if it still holds the lock: a server process id is
		// reused once its session has ended.
		if _, err := in.conn.Exec(ctx, `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
			WHERE l.pid = $1 AND l.locktype = 'advisory' AND l.granted AND l.classid = $2::int4::oid AND l.objid = $3::int4::oid
			  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			int64(in.lostPID), instanceLockClass, instanceLockID); err != nil {
			in.drop()
			return fmt.Errorf("instance lock: end the lost session: %w", classify(err))
		}
	}
	// The lock of a session just ended is released as its process exits:
	// asked a few times for a moment, not failed at the first.
	for try := 0; ; try++ {
		if err := in.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1::int4, $2::int4)`,
			instanceLockClass, instanceLockID).Scan(&in.held); err != nil {
			in.drop()
			return fmt.Errorf("instance lock: %w", classify(err))
		}
		if in.held || in.lostPID == 0 || try == 10 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if in.held {
		in.lostPID = 0
	}
	return nil
}

// drop closes the connection, and with it the lock if it held it.
func (in *Instance) drop() {
	if in.conn == nil {
		return
	}
	if in.held {
		in.lostPID = in.conn.PgConn().PID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = in.conn.Close(ctx)
	in.conn, in.held, in.standby = nil, false, false
}

// InstanceHolder describes the session holding the database's instance
// lock, for a log line (empty when there is none or it cannot tell).
func InstanceHolder(ctx context.Context, pool *pgxpool.Pool) string {
	var s string
	err := pool.QueryRow(ctx, `SELECT format('server process %s, client %s, application %L, since %s', a.pid,
			coalesce(host(a.client_addr), 'local'), a.application_name, a.backend_start)
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		instanceLockClass, instanceLockID).Scan(&s)
	if err != nil {
		return ""
	}
	return s
}

// Watch checks the lock's connection every interval until ctx ends (nil)
// or the lock is lost to another process (ErrInstanceTaken). A lost
// connection (the database restarted, the session was ended) lost the
// lock with it: Watch reconnects and takes it again, and only a process
// that took it meanwhile makes this one give up, or, when a standby
// waited at the last check, failing to take it again at once
// (ErrInstanceFenced). lost is told of each failed check (err), and once
// the lock is held again (nil); standby of each change in whether another
// process waits.
func (in *Instance) Watch(ctx context.Context, every time.Duration, lost func(error), standby func(waiting bool)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// No deadline of its own while no standby waits: pgx closes a
		// connection whose query a deadline cuts short, and closing it
		// gives the lock away. A database that is slow to answer keeps
		// the session, and the lock with it; a broken connection fails
		// the check by itself. With a standby waiting, see
		// standbyCheckTimeout.
		waited := in.standbySeen
		retaken, err := in.check(ctx, every)
		if in.standbySeen != waited {
			standby(in.standbySeen)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrInstanceTaken):
			return err
		case err != nil && waited:
			return fmt.Errorf("%w (%v)", ErrInstanceFenced, err)
		case err != nil:
			failing = true
			lost(err)
		case failing || retaken:
			failing = false
			lost(nil)
		}
	}
}

// check asks the lock's connection whether a standby waits, or
// reconnects and takes the lock again (retaken) when there is none.
func (in *Instance) check(ctx context.Context, every time.Duration) (retaken bool, err error) {
	if in.conn != nil {
		qctx := ctx
		if in.standbySeen {
			var cancel context.CancelFunc
			qctx, cancel = context.WithTimeout(ctx, standbyCheckTimeout)
			defer cancel()
		}
		err := in.conn.QueryRow(qctx, `SELECT EXISTS (SELECT FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid = $1::int4::oid AND objid = $2::int4::oid
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
			instanceLockClass, instanceStandbyID).Scan(&in.standbySeen)
		if err == nil {
			return false, nil
		}
		in.drop()
	}
	// Bounded, unlike the check: no lock is held here to lose, and a
	// database that drops packets would hold a connect for minutes
	// while a standby that reaches it takes over.
	tctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
	defer cancel()
	if err := in.take(tctx); err != nil {
		return false, err
	}
	if !in.held {
		return false, ErrInstanceTaken
	}
	return true, nil
}

// Close releases the lock (its connection closes). Call it after Watch
// has returned.
func (in *Instance) Close() {
	in.drop()
	in.lostPID = 0
}
