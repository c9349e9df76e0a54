package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// API.md §4: "A PUT whose url or email differs from the stored one must
// carry password too (else 400 ...): the stored secret never follows a
// gateway to a new host." The rule was checked only against a read made
// before the update's own transaction, so a PUT that repeats the url (or
// email) it read, needing no password, could be applied after a
// concurrent PUT that moved the gateway with a new host's password: the
// gateway ended up back at the old host (or account) holding the password
// sent only for the new one, in the first few of 150 rounds each time.
// Now that PUT answers 400 on password, or lands before the move. (Found
// by an audit, helper 4, whose tests these are, one for each field.)
func TestStoredSecretNeverFollowsAConcurrentMove(t *testing.T) {
	for _, field := range []string{"url", "email"} {
		t.Run(field, func(t *testing.T) {
			e := newEnv(t, api.Options{})
			f := e.factory(e.org("O"), "F")
			was := map[string]string{"url": "ws://10.0.0.1:8080/gw", "email": "old@example.com"}[field]
			moved := map[string]string{"url": "ws://10.0.0.2:8080/gw", "email": "new@example.com"}[field]
			refused := 0
			for i := 0; i < 150; i++ {
				gw := e.create("/api/gateways", map[string]any{"factory_id": f, "gateway_id": fmt.Sprintf("race-%d", i),
					"name": "R", "url": "ws://10.0.0.1:8080/gw", "email": "old@example.com", "password": "old-password"})
				id := gw["id"].(string)
				newPassword := fmt.Sprintf("new-password-%d", i)
				var wg sync.WaitGroup
				var moveStatus int
				var repeat response
				start := make(chan struct{})
				wg.Add(2)
				go func() { // moves the gateway, with the new host's password
					defer wg.Done()
					<-start
					moveStatus = e.do("PUT", "/api/gateways/"+id, map[string]any{field: moved, "password": newPassword}).status
				}()
				go func() { // repeats what it read (needs no password), renames
					defer wg.Done()
					<-start
					repeat = e.do("PUT", "/api/gateways/"+id, map[string]any{field: was, "name": "renamed"})
				}()
				close(start)
				wg.Wait()
				require.Equal(t, 200, moveStatus)
				tg, err := e.st.Target(context.Background(), uuid.MustParse(id))
				require.NoError(t, err)
				stored := map[string]string{"url": tg.URL, "email": tg.Email}[field]
				require.False(t, stored == was && tg.Password == newPassword,
					"round %d: the gateway is back at %s holding the password sent only for %s (the repeating PUT answered %d)",
					i, was, moved, repeat.status)
				if repeat.status != 200 {
					require.Equal(t, 400, repeat.status, "round %d: %s", i, repeat.body)
					assert.Contains(t, string(repeat.body), `"field":"password"`, "round %d", i)
					refused++
				}
			}
			t.Logf("%s: the repeating PUT came after the move and was refused in %d of 150 rounds", field, refused)
		})
	}
}
