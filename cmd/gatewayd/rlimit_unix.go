//go:build unix

package main

import "syscall"

// raiseOpenFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns both. (Go's runtime does the same at start since 1.19; doing it
// here makes it explicit, and the result is logged.)
func raiseOpenFileLimit() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	if r.Cur < r.Max {
		raised := r
		raised.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(r.Cur), uint64(r.Max), err
		}
		r = raised
	}
	// The conversions are for the BSDs, whose Rlimit fields are int64.
	return uint64(r.Cur), uint64(r.Max), nil
}
