// Package memlimit gives the Go runtime a soft memory limit below the
// container's. Go (as of 1.26) sizes GOMAXPROCS from the cgroup's CPU
// quota but not the heap from its memory limit: without a soft limit the
// heap may grow to twice what is live before a collection, and a burst
// (readings in flight, a create storm) that a container's limit could
// hold if the collector ran earlier gets the process OOM-killed instead.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Ratio is the share of the cgroup's limit given to the runtime: the rest
// is for what its soft limit does not see or cannot free at once
// (goroutine stacks in use, the binary's pages, the kernel's socket
// buffers charged to the cgroup).
const Ratio = 0.9

// unlimited: cgroup v1 reports "no limit" as a huge page-rounded number.
const unlimited = 1 << 60

// Limit returns the memory limit of the cgroup this process is in, read
// from the file system under root ("/" but in tests): under cgroup v2 the
// smallest memory.max from the process's cgroup up to the hierarchy's
// root, under v1 the memory controller's memory.limit_in_bytes. 0 means
// no limit (or no cgroup file system).
func Limit(root string) (int64, error) {
	fsys := os.DirFS(root)
	self, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read cgroup membership: %w", err)
	}
	// The cgroup paths; a present one is never empty (it starts with /).
	var v1, v2 string
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			v1 = parts[2]
		}
	}
	if v1 != "" {
		// In a container the path is often the host's, not mounted: the
		// mount's own root is the container's cgroup then.
		for _, dir := range []string{path.Join("sys/fs/cgroup/memory", v1), "sys/fs/cgroup/memory"} {
			n, ok, err := readLimit(fsys, path.Join(dir, "memory.limit_in_bytes"))
			if err != nil || ok {
				return n, err
			}
		}
		return 0, nil
	}
	if v2 == "" {
		return 0, nil
	}
	var least int64
	for dir := path.Join("sys/fs/cgroup", v2); ; dir = path.Dir(dir) {
		n, ok, err := readLimit(fsys, path.Join(dir, "memory.max"))
		if err != nil {
			return 0, err
		}
		if ok && n > 0 && (least == 0 || n < least) {
			least = n
		}
		if dir == "sys/fs/cgroup" || dir == "." || dir == "/" {
			return least, nil
		}
	}
}

// readLimit reads a limit file: ok is false when it does not exist; "max"
// and v1's huge values are 0 (no limit).
func readLimit(fsys fs.FS, name string) (n int64, ok bool, err error) {
	b, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, true, nil
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("read %s: %q is not a limit", name, s)
	}
	if n >= unlimited {
		return 0, true, nil
	}
	return n, true, nil
}

// Decision is what Apply did.
type Decision struct {
	// Limit is the runtime's soft limit now; 0 if there is none.
	Limit int64
	// Source is "GOMEMLIMIT" (set by the operator: left alone), "cgroup"
	// (Ratio of Cgroup) or "none".
	Source string
	// Cgroup is the container's limit, 0 if none.
	Cgroup int64
}

// Apply gives the runtime a soft limit of Ratio of the cgroup's limit,
// unless one is set already (GOMEMLIMIT, which the runtime read at start;
// GOMEMLIMIT=off keeps it unlimited). set is debug.SetMemoryLimit.
func Apply(root string, getenv func(string) string, set func(int64) int64) (Decision, error) {
	current := set(-1) // reads without changing
	cg, err := Limit(root)
	d := Decision{Cgroup: cg, Source: "none"}
	if current != math.MaxInt64 {
		d.Limit = current
	}
	if getenv("GOMEMLIMIT") != "" {
		d.Source = "GOMEMLIMIT"
		return d, err
	}
	if err != nil || cg == 0 {
		return d, err
	}
	d.Limit, d.Source = int64(float64(cg)*Ratio), "cgroup"
	set(d.Limit)
	return d, nil
}
