//go:build !unix

package netutil

import "net"

// Pending cannot peek at a socket here (no MSG_PEEK|MSG_DONTWAIT), so it
// says nothing is pending: a gateway's login then waits only for
// QuietWait (its quietLimit still bounds the wait for a greeting), and a
// connection not yet read from counts as silent at shutdown.
func Pending(net.Conn) bool { return false }
