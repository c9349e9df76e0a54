package api_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// (Found by an audit, helper 8, whose test this is.) A list's page and
// its pagination.total must describe the same list: a
// first page of a list shorter than the limit holds every row the total
// counts, no more and no fewer (API.md §3: lists answer {"data",
// "pagination": {"total", …}}, "the database does the paging"). The count
// and the page are two statements of one implicit transaction in READ
// COMMITTED, so each takes its own snapshot: a create (or delete) that
// commits between them makes the page hold a row the total does not
// count, or the other way round.
func TestListTotalMatchesPageUnderConcurrentWrites(t *testing.T) {
	e := newEnv(t, api.Options{})
	const creates = 90 // with the Default Organization, under the limit of 100
	var stop atomic.Bool
	var wg, writers sync.WaitGroup
	// Writers: organizations created one after the other, by two clients.
	var made atomic.Int64
	for w := range 2 {
		writers.Go(func() {
			// Three rounds of creating 45 and deleting them again: each
			// create and each delete may land between a list's count and
			// its page.
			for round := range 3 {
				var ids []string
				for i := w; i < creates; i += 2 {
					r := e.do("POST", "/api/organizations", map[string]any{"name": fmt.Sprintf("org-%d-%03d", round, i)})
					if r.status != 201 {
						t.Errorf("create: %d %s", r.status, r.body)
						return
					}
					ids = append(ids, r.json(t)["id"].(string))
					made.Add(1)
				}
				for _, id := range ids {
					if r := e.do("DELETE", "/api/organizations/"+id, nil); r.status != 204 {
						t.Errorf("delete: %d %s", r.status, r.body)
						return
					}
				}
			}
		})
	}
	type mismatch struct {
		total, items int
		hasNext      bool
	}
	var mu sync.Mutex
	var bad []mismatch
	lists := atomic.Int64{}
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				r := e.do("GET", "/api/organizations?limit=100", nil)
				if r.status != 200 {
					t.Errorf("list: %d %s", r.status, r.body)
					return
				}
				lists.Add(1)
				var out struct {
					Data       []json.RawMessage
					Pagination struct {
						Total   int
						HasNext bool
					}
				}
				if err := json.Unmarshal(r.body, &out); err != nil {
					t.Error(err)
					return
				}
				if out.Pagination.Total != len(out.Data) {
					mu.Lock()
					bad = append(bad, mismatch{out.Pagination.Total, len(out.Data), out.Pagination.HasNext})
					mu.Unlock()
				}
			}
		})
	}
	writers.Wait()
	stop.Store(true)
	wg.Wait()
	require.EqualValues(t, 3*creates, made.Load())
	t.Logf("%d lists during %d creates and as many deletes", lists.Load(), made.Load())
	require.Empty(t, bad, "a first page of a list under its limit must hold exactly the rows its total counts (total vs items)")
}
