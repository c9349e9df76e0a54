package ctc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestMatcherFIFO(t *testing.T) {
	t.Parallel()
	var m Matcher[string]
	now := time.Unix(0, 0)
	m.Add("a", now, time.Second)
	m.Add("b", now, time.Second)
	m.Add("c", now, time.Second)
	assert.Equal(t, 3, m.Pending())
	for _, want := range []string{"a", "b", "c"} {
		got, ok, late := m.Take()
		assert.True(t, ok)
		assert.False(t, late)
		assert.Equal(t, want, got)
	}
	_, ok, _ := m.Take()
	assert.False(t, ok, "an answer nobody asked for")
}

func TestMatcherTimeoutFailsOnlyItsOwn(t *testing.T) {
	t.Parallel()
	var m Matcher[string]
	now := time.Unix(0, 0)
	m.Add("slow", now, time.Second)
	m.Add("patient", now, time.Minute)
	assert.Empty(t, m.Expire(now.Add(500*time.Millisecond)))
	assert.Equal(t, []string{"slow"}, m.Expire(now.Add(time.Second)))
	assert.Equal(t, 1, m.Pending())
	assert.Empty(t, m.Expire(now.Add(1500*time.Millisecond)), "a request fails once")

	// The late answer to "slow" arrives: it is taken as slow's, late, not
	// given to "patient".
	got, ok, late := m.Take()
	assert.True(t, ok)
	assert.True(t, late, "late answer")
	assert.Equal(t, "slow", got)
	got, ok, late = m.Take()
	assert.True(t, ok)
	assert.False(t, late)
	assert.Equal(t, "patient", got)
}

func TestMatcherTombstoneIsForgotten(t *testing.T) {
	t.Parallel()
	var m Matcher[string]
	now := time.Unix(0, 0)
	m.Add("lost", now, time.Second)
	assert.Equal(t, []string{"lost"}, m.Expire(now.Add(time.Second)))
	next, ok := m.NextDeadline()
	assert.True(t, ok)
	assert.Equal(t, now.Add(2*time.Second), next)
	assert.Empty(t, m.Expire(now.Add(2*time.Second)))
	_, ok = m.NextDeadline()
	assert.False(t, ok, "the tombstone is gone after a second timeout")
	m.Add("fresh", now.Add(3*time.Second), time.Second)
	got, ok, late := m.Take()
	assert.True(t, ok)
	assert.False(t, late)
	assert.Equal(t, "fresh", got)
}

func TestMatcherCloseFailsAllPending(t *testing.T) {
	t.Parallel()
	var m Matcher[int]
	now := time.Unix(0, 0)
	m.Add(1, now, time.Second)
	m.Add(2, now, 5*time.Second)
	m.Add(3, now, 5*time.Second)
	assert.Equal(t, []int{1}, m.Expire(now.Add(2*time.Second)))
	assert.Equal(t, []int{2, 3}, m.Close(), "close fails the pending, not the tombstone")
	assert.Equal(t, 0, m.Pending())
	_, ok, _ := m.Take()
	assert.False(t, ok)
	assert.Empty(t, m.Close())
}

func TestMatcherNextDeadline(t *testing.T) {
	t.Parallel()
	var m Matcher[int]
	_, ok := m.NextDeadline()
	assert.False(t, ok)
	now := time.Unix(100, 0)
	m.Add(1, now, 5*time.Second)
	m.Add(2, now, 2*time.Second)
	d, ok := m.NextDeadline()
	assert.True(t, ok)
	assert.Equal(t, now.Add(2*time.Second), d)
}
