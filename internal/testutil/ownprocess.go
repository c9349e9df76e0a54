package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

const ownProcessEnv = "GATEWAYD_TEST_OWN_PROCESS"

// OwnProcess runs the calling test alone in a child process (the test
// binary again, its -test.run matching only this test) and reports the
// child's result. It returns true in the parent, which should return at
// once, and false in the child, which runs the test.
//
// For a test that measures its process (the live heap, the number of
// goroutines): it gets a process to itself, so the package's other tests
// no longer have to wait until it is done, as they do for a test that is
// not parallel; in the parent it is parallel.
func OwnProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv(ownProcessEnv) == t.Name() {
		return false
	}
	t.Parallel()
	args := []string{"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), ownProcessEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	// A pattern that matched nothing passes too: the child must say it
	// ran the test.
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name()+" ")) {
		t.Fatalf("%s in a process of its own: %v\n%s", t.Name(), err, out)
	}
	t.Logf("%s in a process of its own:\n%s", t.Name(), out)
	return true
}
