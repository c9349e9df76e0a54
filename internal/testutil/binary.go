package testutil

import "os"

// GatewaydBinary is the gatewayd binary tests that run the real program
// should use instead of building their own: GATEWAYD_TEST_BIN, which
// `make test` sets to the bin/gatewayd it builds first, or "" (the test
// builds one). Two packages building it each linked it again (~2 CPU-s
// apiece), and in a fresh checkout compiled its dependencies twice at once.
func GatewaydBinary() string { return os.Getenv("GATEWAYD_TEST_BIN") }
