//go:build unix

package actors

import (
	"net"
	"syscall"
)

// pending reports whether the kernel holds bytes to read on conn, without
// waiting or taking them. A connection that cannot be asked has none.
func pending(conn net.Conn) bool {
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
	err = rc.Read(func(fd uintptr) bool {
		n, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	})
	return err == nil && peekErr == nil && n > 0
}
