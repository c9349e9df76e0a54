package store

import (
	"time"

	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
)

// FactoriesByID and GatewaysByID answer ids with the one statement that
// answers coalesced GETs (many): each id's row, or pgx.ErrNoRows.
func FactoriesByID(ctx context.Context, s *Store, ids ...uuid.UUID) ([]gatewayd.Factory, []error, error) {
	return answerAll(ctx, s.factories, ids)
}

func GatewaysByID(ctx context.Context, s *Store, ids ...uuid.UUID) ([]gatewayd.Gateway, []error, error) {
	return answerAll(ctx, s.gateways, ids)
}

func answerAll[K comparable, V any](ctx context.Context, c *coalescer[K, V], keys []K) ([]V, []error, error) {
	answer, err := c.many(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	vs, errs := make([]V, len(keys)), make([]error, len(keys))
	for i, k := range keys {
		vs[i], errs[i] = answer(k)
	}
	return vs, errs, nil
}

// ListAsk is one page of the gateways of one factory (nil: of all).
type ListAsk struct {
	Factory *uuid.UUID
	Page    Page
}

// GatewayPages answers pages of gateway lists with the statements that
// answer concurrent lists together (many): each page and its list's total.
func GatewayPages(ctx context.Context, s *Store, asks ...ListAsk) ([][]gatewayd.Gateway, []int, error) {
	keys := make([]listKey, len(asks))
	for i, a := range asks {
		keys[i].page = a.Page
		if a.Factory != nil {
			keys[i].parent, keys[i].hasParent = *a.Factory, true
		}
	}
	pages, errs, err := answerAll(ctx, s.gatewayList.shared, keys)
	if err != nil {
		return nil, nil, err
	}
	items, totals := make([][]gatewayd.Gateway, len(asks)), make([]int, len(asks))
	for i, p := range pages {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
		items[i], totals[i] = p.items, p.total
	}
	return items, totals, nil
}

// FactoryUpdate is one request of UpdateFactoriesAtOnce.
type FactoryUpdate struct {
	ID    uuid.UUID
	Patch FactoryPatch
}

// UpdateFactoriesAtOnce and CreateFactoriesAtOnce run requests as the
// coalescer runs a batch of them (many): shared statements, duplicates
// after, singles when the shared statement fails.
func UpdateFactoriesAtOnce(ctx context.Context, s *Store, us ...FactoryUpdate) ([]gatewayd.Factory, []error, error) {
	reqs := make([]*factoryUpdate, len(us))
	for i, u := range us {
		reqs[i] = &factoryUpdate{id: u.ID, p: u.Patch}
	}
	return answerAll(ctx, s.factoryUpdates, reqs)
}

func CreateFactoriesAtOnce(ctx context.Context, s *Store, fs ...NewFactory) ([]gatewayd.Factory, []error, error) {
	reqs := make([]*factoryCreate, len(fs))
	for i, f := range fs {
		if f.Timezone == "" {
			f.Timezone = "UTC"
		}
		reqs[i] = &factoryCreate{id: uuid.New(), f: f}
	}
	return answerAll(ctx, s.factoryCreates, reqs)
}

// SharedWrites says how many writes (factory updates and creates, gateway
// creates) shared a statement, and how many shared statements failed and
// were run again request by request.
func SharedWrites(s *Store) (shared, retried int64) {
	return s.factoryUpdates.shared.Load() + s.factoryCreates.shared.Load() + s.gatewayCreates.shared.Load(),
		s.factoryUpdates.retried.Load() + s.factoryCreates.retried.Load() + s.gatewayCreates.retried.Load()
}

// CreateGatewaysAtOnce is CreateFactoriesAtOnce for gateways.
func CreateGatewaysAtOnce(ctx context.Context, s *Store, gs ...NewGateway) ([]gatewayd.Gateway, []error, error) {
	reqs := make([]*gatewayCreate, len(gs))
	for i, g := range gs {
		sealed, err := s.sealer.Seal(g.Password)
		if err != nil {
			return nil, nil, err
		}
		reqs[i] = &gatewayCreate{id: uuid.New(), g: g, sealed: sealed}
	}
	return answerAll(ctx, s.gatewayCreates, reqs)
}

// Classify is the package's mapping of database errors to gatewayd's.
func Classify(err error) error { return classify(err) }

// ForgetLockConn makes in lose its lock connection the way a network that
// drops it silently does: the process no longer has it, the server keeps
// the session and its lock. The caller closes the returned connection.
func ForgetLockConn(in *Instance) *pgx.Conn {
	c := in.conn
	in.lostPID, in.conn, in.held = c.PgConn().PID(), nil, false
	return c
}

// CheckInstance is one of Watch's checks.
func CheckInstance(ctx context.Context, in *Instance) (retaken bool, err error) {
	return in.check(ctx, time.Second)
}

// StandbySeen says whether in's last check saw a process waiting.
func StandbySeen(in *Instance) bool { return in.standbySeen }

// TemperatureSQL is RecordTemperatures' insert ($1 gateways, $2 serials,
// $3 temperatures, $4 times).
func TemperatureSQL() string {
	return temperatureBatch(nil, nil, nil, nil, nil, nil).QueuedQueries[lockStatements()].SQL
}

// lockStatements is how many statements lockForNewSensors queues before
// a batch's own.
func lockStatements() int {
	b := &pgx.Batch{}
	lockForNewSensors(b, nil, nil)
	return b.Len()
}

// MergeSQL is MergeDiscoveries' insert of named entries ($1 gateways, $2
// serials, $3 names, $4 parts, $5 rates, $6 samples, $7 connected, $8
// times, $9 true).
func MergeSQL() string {
	return mergeBatch(nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil).QueuedQueries[lockStatements()].SQL
}
