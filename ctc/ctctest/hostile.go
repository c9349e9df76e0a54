package ctctest

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ctcgw/gatewayd/ctc"
)

// login answers POST_LOGIN.
func (c *conn) login(f Faults, cfg Config, data json.RawMessage) {
	if f.IgnoreLogins {
		return
	}
	var login ctc.Login
	_ = json.Unmarshal(data, &login)
	switch {
	case f.LoginErrorSize > 0:
		c.g.record(func(s *Stats) { s.LoginsRefused++ })
		_ = c.write(websocket.TextMessage, bigFrame(bigLoginError, f.LoginErrorSize))
		return
	case f.RefuseLogins || login.Email != cfg.Email || login.Password != cfg.Password:
		c.g.record(func(s *Stats) { s.LoginsRefused++ })
		c.reply(ctc.TypeRtnErr, map[string]any{"Attempt": nil, "Error": "Invalid email or password"})
		return
	}
	c.loggedIn.Store(true)
	c.g.record(func(s *Stats) { s.Logins++ })
	c.g.server.logins.Add(1)
	c.reply(ctc.TypeRtnLogin, ctc.LoginResult{Email: ctc.Text(login.Email), First: "Sim", Last: ctc.Text(c.g.name), Success: true,
		AccessLevel: ctc.Scalar("1"), Verified: ctc.Scalar("true")})
	if f.AnswerLoginTwice {
		c.reply(ctc.TypeRtnLogin, ctc.LoginResult{Email: ctc.Text(login.Email), Success: true})
	}
	if f.OversizeAfterLogin > 0 {
		// Counted whether or not the write completes: a client that
		// stops reading at its limit makes it fail.
		c.g.record(func(s *Stats) { s.OversizeSent++ })
		_ = c.write(websocket.TextMessage, bigFrame(bigOversize, f.OversizeAfterLogin))
	}
	c.startWorkers()
}

// defaultFloodFrame is what Flood sends unless FloodFrame says otherwise:
// 62 bytes of a type nobody knows.
const defaultFloodFrame = `{"Type":"NOT_SIM_FLOOD","From":"SERV","Target":"UI","Data":{}}`

// floodBatch is how many frames the flood sends between looks at its
// switch.
const floodBatch = 64

func (c *conn) floodLoop() {
	text := c.g.Faults().FloodFrame
	if text == "" {
		text = defaultFloodFrame
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(text))
	if err != nil {
		c.stopped(workFlood)
		return
	}
	for {
		n := 0
		for ; n < floodBatch; n++ {
			select {
			case <-c.done:
				c.g.floodSent.Add(int64(n))
				return
			default:
			}
			if c.writePrepared(pm) != nil {
				c.g.floodSent.Add(int64(n))
				c.stopped(workFlood)
				return
			}
		}
		c.g.floodSent.Add(int64(n))
		if !c.keepGoing(workFlood) {
			return
		}
	}
}

func (c *conn) writePrepared(pm *websocket.PreparedMessage) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := c.ws.WritePreparedMessage(pm)
	if err != nil {
		c.broken(err)
	}
	return err
}

// Big frames are built once per size and shared by every socket.
type bigKind int

const (
	bigLoginError bigKind = iota // RTN_ERR with a long Error text
	bigOversize                  // an unknown notification with long Data
)

var bigFrames = struct {
	sync.Mutex
	m map[bigKey][]byte
}{m: make(map[bigKey][]byte)}

type bigKey struct {
	kind bigKind
	size int
}

// bigFrame returns a frame of kind: for bigLoginError one whose Error
// text is size bytes, for bigOversize one of size bytes in all.
func bigFrame(kind bigKind, size int) []byte {
	k := bigKey{kind, size}
	bigFrames.Lock()
	defer bigFrames.Unlock()
	if b, ok := bigFrames.m[k]; ok {
		return b
	}
	var b []byte
	switch kind {
	case bigLoginError:
		prefix := `{"Type":"RTN_ERR","From":"SERV","Target":"UI","Data":{"Attempt":null,"Error":"`
		text := strings.Repeat("Invalid email or password. ", size/27+1)[:size]
		b = append(append(append(make([]byte, 0, len(prefix)+size+3), prefix...), text...), `"}}`...)
	case bigOversize:
		prefix, suffix := `{"Type":"NOT_SIM_OVERSIZE","From":"SERV","Target":"UI","Data":"`, `"}`
		if size < len(prefix)+len(suffix) {
			b = []byte(strings.Repeat("x", size))
			break
		}
		b = make([]byte, 0, size)
		b = append(b, prefix...)
		b = append(b, strings.Repeat("x", size-len(prefix)-len(suffix))...)
		b = append(b, suffix...)
	}
	if len(bigFrames.m) >= 8 {
		clear(bigFrames.m)
	}
	bigFrames.m[k] = b
	return b
}
