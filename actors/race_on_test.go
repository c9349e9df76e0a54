//go:build race

package actors

// raceEnabled: the race detector is on. Under it sync.Pool drops a share
// of what is put back on purpose, so allocation counts say nothing.
const raceEnabled = true
