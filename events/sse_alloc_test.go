//go:build !race

package events

import (
	"bufio"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
)

// WriteSSE runs once per event per subscriber, so it must not allocate.
// (The race detector's instrumentation allocates, hence the build tag.)
func TestWriteSSEDoesNotAllocate(t *testing.T) {
	w := bufio.NewWriter(io.Discard)
	e := Event{ID: 1 << 40, Type: TypeGatewayState, Data: []byte(`{"id":"3f1c2a4e-8a47-4f4e-9b7e-0c7f5b2d9e11","to":"AUTHENTICATED"}`)}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := WriteSSE(w, e); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
}
