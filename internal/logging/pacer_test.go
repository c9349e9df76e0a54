package logging

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPacer(t *testing.T) {
	var p Pacer
	t0 := time.Unix(1000, 0)
	ok, n := p.Allow(t0, time.Second)
	assert.True(t, ok)
	assert.Zero(t, n)
	for i := range 4 {
		ok, _ = p.Allow(t0.Add(time.Duration(i)*100*time.Millisecond), time.Second)
		assert.False(t, ok)
	}
	ok, n = p.Allow(t0.Add(time.Second), time.Second)
	assert.True(t, ok)
	assert.Equal(t, 4, n)
}
