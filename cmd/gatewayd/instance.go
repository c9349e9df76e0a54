package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/store"
)

// The instance lock's pace (store/instance.go). The running process checks
// its lock connection every lockCheckEvery; a standby tries for the lock as
// often. A standby that had to wait waits takeoverGrace more once it has
// the lock: the lock is free as soon as the running process's lock
// session ends, which is not always the process's end (the session was
// ended, the database restarted, the network to it broke), and that
// process needs a check, an attempt to take the lock again (bounded by a
// check interval) and the closing of its gateways to see it and stand
// down (it closes them before anything else). Without the wait, both ran
// every gateway for up to a check interval and a drain.
const (
	lockCheckEvery = time.Second
	takeoverGrace  = 3*lockCheckEvery + 2*time.Second
)

// holdInstance waits for the database's instance lock, saying so in the
// start phase and the log, and then watches it. lost yields an error when
// another process took the lock; release stops the watch and lets the
// lock go.
func holdInstance(ctx context.Context, pool *pgxpool.Pool, phase *atomic.Pointer[startPhase], log zerolog.Logger) (lost <-chan error, release func(), err error) {
	waited := false
	var waitLog logging.Pacer
	inst, err := store.AcquireInstance(ctx, pool, lockCheckEvery, func(n int, err error) {
		waited = true
		ok, unlogged := waitLog.Allow(time.Now(), time.Minute)
		if err != nil {
			phase.Store(&startPhase{why: "waiting for the database (instance lock)"})
			if ok {
				log.Warn().Err(err).Int("unlogged_since", unlogged).Msg("instance lock: database not reachable; trying again")
			}
			return
		}
		phase.Store(&startPhase{databaseUp: true, why: "another gatewayd runs this database's gateways; waiting for it to stop"})
		if ok {
			holder, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			log.Warn().Int("attempts", n).Str("holder", store.InstanceHolder(holder, pool)).
				Msg("another gatewayd runs this database's gateways; waiting for it to stop (one instance per database; this one takes over when that one stops)")
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if waited {
		phase.Store(&startPhase{databaseUp: true, why: "taking over from another gatewayd"})
		log.Info().Str("grace", takeoverGrace.String()).Msg("instance lock taken after waiting; taking over after a grace period")
		t := time.NewTimer(takeoverGrace)
		select {
		case <-ctx.Done():
			t.Stop()
			inst.Close()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
	lostc := make(chan error, 1)
	watchCtx, endWatch := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var lockLog logging.Pacer
		lostc <- inst.Watch(watchCtx, lockCheckEvery, func(err error) {
			switch ok, n := lockLog.Allow(time.Now(), time.Minute); {
			case err == nil:
				log.Info().Msg("instance lock held again")
			case ok:
				log.Warn().Err(err).Int("unlogged_since", n).Msg("instance lock's connection lost; taking the lock again when the database answers")
			}
		}, func(waiting bool) {
			if waiting {
				log.Info().Msg(logging.StandbyWaits)
				return
			}
			log.Info().Msg("no other gatewayd waits to take over any more")
		})
	}()
	return lostc, func() {
		endWatch()
		<-done
		inst.Close()
	}, nil
}
