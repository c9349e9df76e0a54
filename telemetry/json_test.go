package telemetry

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// stateEvent is gateway.state's data as encoding/json writes it: the
// reference appendStateEvent must match byte for byte.
type stateEvent struct {
	ID        uuid.UUID       `json:"id"`
	FactoryID uuid.UUID       `json:"factory_id"`
	GatewayID string          `json:"gateway_id"`
	Name      string          `json:"name"`
	From      *gatewayd.State `json:"from"`
	To        gatewayd.State  `json:"to"`
	At        string          `json:"at"`
	LastError *string         `json:"last_error"`
}

func marshalled(t testing.TB, st gatewayd.Status, from gatewayd.State) string {
	e := stateEvent{ID: st.ID, FactoryID: st.FactoryID, GatewayID: st.GatewayID, Name: st.Name, To: st.State,
		At: st.Since.UTC().Format("2006-01-02T15:04:05.000Z07:00"), LastError: st.LastError}
	if from != "" {
		e.From = &from
	}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	return string(b)
}

var awkward = []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "héllo wörld ✓ 日本", "bad \xff\xfe utf8 \xc3", "line\u2028para\u2029end", "emoji 🚀"}

// The event's data is what encoding/json made of it before, for every
// kind of string a gateway id, a name or an error may hold.
func TestStateEventMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		st := gatewayd.Status{ID: uuid.New(), FactoryID: uuid.New(), GatewayID: awkward[rng.IntN(len(awkward))],
			Name: awkward[rng.IntN(len(awkward))], State: gatewayd.StateBackoff,
			Since: time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9))}
		if i%2 == 0 {
			msg := awkward[rng.IntN(len(awkward))]
			st.LastError = &msg
		}
		from := gatewayd.State("")
		if i%3 != 0 {
			from = gatewayd.StateConnecting
		}
		assert.Equal(t, marshalled(t, st, from), string(appendStateEvent(nil, st, from)))
	}
}

// appendString writes any string as encoding/json does.
func FuzzAppendString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(appendString(nil, s)))
	})
}

func BenchmarkStateEvent(b *testing.B) {
	msg := "dial tcp 127.0.0.1:9: connect: connection refused"
	st := gatewayd.Status{ID: uuid.New(), FactoryID: uuid.New(), GatewayID: "GW-0042", Name: "Line 4 press",
		State: gatewayd.StateBackoff, Since: time.Now(), LastError: &msg}
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_ = marshalled(b, st, gatewayd.StateConnecting)
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			_ = appendStateEvent(make([]byte, 0, stateEventSize), st, gatewayd.StateConnecting)
		}
	})
}
