//go:build !unix

package actors

import "net"

// pending cannot peek at a socket here (no MSG_PEEK|MSG_DONTWAIT), so it
// says nothing is pending: the login then waits only for QuietWait, and
// the actor's quietLimit still bounds the wait for a greeting.
func pending(net.Conn) bool { return false }
