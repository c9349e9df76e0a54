//go:build unix

package netutil

import (
	"net"
	"syscall"
)

// Pending reports whether the kernel holds bytes to read on conn, without
// taking them or waiting, and without the read lock a Read in progress on
// conn holds (Control, not RawConn.Read): the HTTP shutdown asks it of
// connections a server goroutine may be reading, a gateway's quiet probe
// of the socket its own reader reads. A connection that cannot be asked
// has none.
func Pending(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var peekErr error
	var b [1]byte
	err = rc.Control(func(fd uintptr) {
		n, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return err == nil && peekErr == nil && n > 0
}
