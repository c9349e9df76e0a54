package actors

// What a peer sends into an open message that is not its data does not
// keep it open. (Checked by an audit, helper 1, whose test this is.)

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README: "a large message ... whose data stops for GATEWAY_PONG_TIMEOUT
// ... cuts its connection off too"; "(pongs between its fragments do not
// count)". After a reading's first 40 KB (let into the intake), the peer
// sends, every 100 ms for much longer than the stall bound, only what is
// not the message's data: pings, pongs, empty continuation fragments; or
// half a frame header and nothing; or a header promising 1 MiB and
// nothing. Each is cut off once no data came for the stall bound (500 ms)
// and gives back what it held.
// Would catch: control frames or empty fragments (read by gorilla inside
// one Read) counted as data, a partial header waiting without deadline.
func TestOnlyDataKeepsAnOpenMessageOpen(t *testing.T) {
	t.Parallel()
	keepers := map[string][]byte{
		"pings":           {0x89, 2, 'h', 'i'},
		"pongs":           {0x8A, 2, 'h', 'i'},
		"empty fragments": {0x00, 0},
		"half a header":   nil, // sent once below
		"a header only":   nil,
	}
	for name, keep := range keepers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			client, peer := socketPair(t)
			in := newIntake(64 << 20)
			_, ended := readerEnd(t, client, in, Config{PongTimeout: 500 * time.Millisecond, ReadingTimeout: time.Hour})
			raw := peer.UnderlyingConn()
			rawFrame(t, peer, false, 1, []byte(openHead+strings.Repeat("0", 40000)))
			switch name {
			case "half a header":
				_, err := raw.Write([]byte{0x00, 127, 0, 0}) // 4 of its 10 bytes
				require.NoError(t, err)
			case "a header only":
				_, err := raw.Write(binary.BigEndian.AppendUint64([]byte{0x00, 127}, 1<<20))
				require.NoError(t, err)
			}
			stop := make(chan struct{})
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				if keep == nil {
					return
				}
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := raw.Write(keep); err != nil {
							return
						}
					}
				}
			}()
			t.Cleanup(func() { close(stop); <-sent })
			start := time.Now()
			err := waitEnd(t, ended, 20*time.Second)
			require.ErrorIs(t, err, errStalled)
			assert.Contains(t, err.Error(), "no data for 500ms")
			assert.Less(t, time.Since(start), 5*time.Second, "kept open by %s", name)
			assert.Eventually(t, func() bool { return in.held() == 0 }, 5*time.Second, 5*time.Millisecond)
		})
	}
}
