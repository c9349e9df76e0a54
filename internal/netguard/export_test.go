package netguard

import "syscall"

// SetDialSpy arms d's hook that sees every address just before it is
// dialed.
func SetDialSpy(d *Dialer, spy func(network, address string)) { d.spy = spy }

// Control exposes the check the net.Dialer runs before connect(2).
func Control(p *Policy) func(network, address string, c syscall.RawConn) error { return p.control }
