package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lister answers the pages of one table's list, optionally of one parent
// (a factory's gateways), with the list's total.
//
// A page is a deferred join: the window of ids is found on the (name, id)
// index (index-only once the table is vacuumed) and only the rows of the
// page are fetched, instead of offset+limit rows. The total counts every
// row of the list. A list alone sends both statements in one round trip.
// Concurrent lists share statements (coalescer): the lists that waited
// for a statement slot are answered together, in one round trip, with
// one count per distinct list and one statement for all the distinct
// pages asked of it.
type lister[T any] struct {
	pool  *pgxpool.Pool
	table string
	scan  pgx.RowToFunc[T]
	// all and ofParent are the statements of the list of every live row
	// and of one parent's (whose id is $1).
	all, ofParent listSQL
	shared        *coalescer[listKey, listPage[T]]
}

// listSQL is one list's statements: its count, one page ($n+1 limit, $n+2
// offset) and many pages ($n+1 offsets, $n+2 limits), n being the list's
// own arguments.
type listSQL struct {
	count, page, pages string
}

func newListSQL(table, qualified, where string, n int) listSQL {
	return listSQL{
		count: `SELECT count(*) FROM ` + table + ` WHERE ` + where,
		page: fmt.Sprintf(`SELECT %s FROM (SELECT id, name FROM %s WHERE %s ORDER BY name, id LIMIT $%d OFFSET $%d) p
		JOIN %s t ON t.id = p.id ORDER BY p.name, p.id`, qualified, table, where, n+1, n+2, table),
		pages: fmt.Sprintf(`SELECT %s, r.i FROM unnest($%d::bigint[], $%d::bigint[]) WITH ORDINALITY AS r(off, lim, i)
		CROSS JOIN LATERAL (SELECT id, name FROM %s WHERE %s ORDER BY name, id LIMIT r.lim OFFSET r.off) p
		JOIN %s t ON t.id = p.id ORDER BY r.i, p.name, p.id`, qualified, n+1, n+2, table, where, table),
	}
}

// maxSharedEnd is how far into a list a page may end and still share a
// statement: a page far down a long list takes long to find, and must not
// hold back the pages near the top that came with it. Such a page is read
// on its own.
const maxSharedEnd = 1000

// listKey is one page of one list: every live row (parent unset) or those
// of one parent.
type listKey struct {
	parent    uuid.UUID
	hasParent bool
	page      Page
}

// listPage is a page and its list's total.
type listPage[T any] struct {
	items []T
	total int
}

// newLister makes the lister of table's list; parent is the column a list
// may be narrowed by ("" for none).
func newLister[T any](pool *pgxpool.Pool, table, parent, columns string, scan pgx.RowToFunc[T]) *lister[T] {
	qualified := qualify("t", columns)
	l := &lister[T]{pool: pool, table: table, scan: scan, all: newListSQL(table, qualified, `deleted_at IS NULL`, 0)}
	if parent != "" {
		l.ofParent = newListSQL(table, qualified, `deleted_at IS NULL AND `+parent+` = $1`, 1)
	}
	l.shared = &coalescer[listKey, listPage[T]]{one: l.one, many: l.many}
	return l
}

// list returns a page of the list, of one parent when parent is set, and
// the list's total.
func (l *lister[T]) list(ctx context.Context, parent *uuid.UUID, page Page) ([]T, int, error) {
	k := listKey{page: page}
	if parent != nil {
		k.parent, k.hasParent = *parent, true
	}
	var p listPage[T]
	var err error
	if page.Offset+page.Limit > maxSharedEnd {
		p, err = l.one(ctx, k)
	} else {
		p, err = l.shared.get(ctx, k)
	}
	if err != nil {
		return nil, 0, classify(err)
	}
	if p.items == nil {
		p.items = []T{}
	}
	return p.items, p.total, nil
}

// statements returns a list's statements and its own arguments.
func (l *lister[T]) statements(k listKey) (*listSQL, []any) {
	if !k.hasParent {
		return &l.all, nil
	}
	return &l.ofParent, []any{k.parent}
}

// one reads a page and its total in one round trip.
func (l *lister[T]) one(ctx context.Context, k listKey) (listPage[T], error) {
	sql, args := l.statements(k)
	return countAndPage(ctx, l.pool, sql.count, sql.page, args, k.page, l.scan)
}

// countAndPage reads a list's total (countSQL, with args) and one page of
// it (pageSQL, with args, then the limit and the offset) in one round trip.
// The error is the driver's, for the caller to classify.
func countAndPage[T any](ctx context.Context, pool *pgxpool.Pool, countSQL, pageSQL string, args []any, page Page,
	scan pgx.RowToFunc[T]) (listPage[T], error) {
	var p listPage[T]
	b := snapshotBatch()
	b.Queue(countSQL, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&p.total) })
	b.Queue(pageSQL, append(args, page.Limit, page.Offset)...).Query(func(rows pgx.Rows) error {
		var err error
		p.items, err = pgx.CollectRows(rows, scan)
		return err
	})
	b.Queue("COMMIT")
	return p, pool.SendBatch(ctx, b).Close()
}

// snapshotBatch starts a batch whose statements read one snapshot, up to
// the COMMIT the caller queues last: a list's count and its page, each in
// its own READ COMMITTED snapshot, disagreed while rows were created or
// deleted (a total of 14 beside 16 rows, hasNext with no next page: found
// by an audit, helper 8). Still one round trip.
func snapshotBatch() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
	return b
}

// many reads the pages of several lists in one round trip: per distinct
// list a count, and one statement for all the distinct pages asked of it,
// each found as it would be alone (a lateral deferred join per page).
func (l *lister[T]) many(ctx context.Context, keys []listKey) (func(listKey) (listPage[T], error), error) {
	type list struct {
		total int
		pages []Page
		items map[Page][]T
	}
	lists := map[listKey]*list{}
	var order []listKey
	for _, k := range keys {
		lk := listKey{parent: k.parent, hasParent: k.hasParent}
		ls := lists[lk]
		if ls == nil {
			ls = &list{items: map[Page][]T{}}
			lists[lk] = ls
			order = append(order, lk)
		}
		if _, ok := ls.items[k.page]; !ok {
			ls.items[k.page] = nil
			ls.pages = append(ls.pages, k.page)
		}
	}
	b := snapshotBatch()
	for _, lk := range order {
		ls := lists[lk]
		sql, args := l.statements(lk)
		b.Queue(sql.count, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&ls.total) })
		offsets, limits := make([]int64, len(ls.pages)), make([]int64, len(ls.pages))
		for i, p := range ls.pages {
			offsets[i], limits[i] = int64(p.Offset), int64(p.Limit)
		}
		b.Queue(sql.pages, append(args, offsets, limits)...).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var i int64
				v, err := l.scan(numbered{rows, &i})
				if err != nil {
					return err
				}
				if i < 1 || i > int64(len(ls.pages)) {
					return fmt.Errorf("list %s: row of page %d of %d", l.table, i, len(ls.pages))
				}
				p := ls.pages[i-1]
				ls.items[p] = append(ls.items[p], v)
			}
			return rows.Err()
		})
	}
	b.Queue("COMMIT")
	if err := l.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return func(k listKey) (listPage[T], error) {
		ls := lists[listKey{parent: k.parent, hasParent: k.hasParent}]
		// A copy: lists that asked the same page must not share a
		// backing array.
		return listPage[T]{items: append([]T(nil), ls.items[k.page]...), total: ls.total}, nil
	}, nil
}

// numbered is a row whose last column, the number of the page it belongs
// to, is read into page after the columns the scan function reads.
type numbered struct {
	pgx.Rows
	page *int64
}

func (r numbered) Scan(dest ...any) error { return r.Rows.Scan(append(dest, r.page)...) }
