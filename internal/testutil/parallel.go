package testutil

import (
	"flag"
	"runtime"
	"strconv"
)

// Parallel lets up to n of the package's parallel tests run at once,
// unless go test was given -parallel. Call it from TestMain before m.Run.
// go test's default is GOMAXPROCS (2 on a small machine), made for tests
// that keep a CPU busy; a package whose tests mostly wait (on sockets,
// timers, PostgreSQL, another process) finishes much sooner with more of
// them in flight. A package opts in only when its tests stay correct on a
// loaded machine: many timing margins were set with two at a time.
func Parallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given && n > runtime.GOMAXPROCS(0) {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
