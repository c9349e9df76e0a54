package testutil

import (
	"net"
	"testing"
)

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago, for a
// process a test starts (which binds it itself).
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
