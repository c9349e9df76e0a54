package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRoot writes files under a temporary root.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return root
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"no cgroup file system", map[string]string{}, 0},
		{"v2, limited", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "536870912\n",
		}, 512 << 20},
		{"v2, unlimited", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}, 0},
		{"v2, the smallest from the process's cgroup up", map[string]string{
			"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":    "268435456\n",
			"sys/fs/cgroup/kubepods/memory.max":         "1073741824\n",
		}, 256 << 20},
		{"v1, in its own directory", map[string]string{
			"proc/self/cgroup": "9:pids:/\n4:memory:/docker/abc\n0::/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "104857600\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
		}, 100 << 20},
		{"v1, the host's path not mounted: the mount's root", map[string]string{
			"proc/self/cgroup":                           "4:cpu,memory:/docker/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "209715200\n",
		}, 200 << 20},
		{"v1, unlimited", map[string]string{
			"proc/self/cgroup": "4:memory:/process_api/7c97\n0::/\n",
			"sys/fs/cgroup/memory/process_api/7c97/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Limit(fakeRoot(t, tc.files))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	_, err := Limit(fakeRoot(t, map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "lots\n",
	}))
	assert.ErrorContains(t, err, `"lots" is not a limit`)
}

// fakeRuntime stands in for debug.SetMemoryLimit.
type fakeRuntime struct{ limit int64 }

func (f *fakeRuntime) set(n int64) int64 {
	old := f.limit
	if n >= 0 {
		f.limit = n
	}
	return old
}

func TestApply(t *testing.T) {
	limited := fakeRoot(t, map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "1000000000\n",
	})
	for _, tc := range []struct {
		name       string
		root       string
		gomemlimit string
		runtime    int64 // the runtime's limit at start
		want       Decision
		after      int64
	}{
		{"the cgroup's, less a tenth", limited, "", math.MaxInt64,
			Decision{Limit: 900000000, Source: "cgroup", Cgroup: 1000000000}, 900000000},
		// The operator's GOMEMLIMIT, read by the runtime at start, stands.
		{"GOMEMLIMIT", limited, "100MiB", 100 << 20,
			Decision{Limit: 100 << 20, Source: "GOMEMLIMIT", Cgroup: 1000000000}, 100 << 20},
		{"GOMEMLIMIT=off", limited, "off", math.MaxInt64,
			Decision{Source: "GOMEMLIMIT", Cgroup: 1000000000}, math.MaxInt64},
		{"no cgroup limit", fakeRoot(t, map[string]string{}), "", math.MaxInt64,
			Decision{Source: "none"}, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &fakeRuntime{limit: tc.runtime}
			env := func(k string) string { return map[string]string{"GOMEMLIMIT": tc.gomemlimit}[k] }
			d, err := Apply(tc.root, env, rt.set)
			require.NoError(t, err)
			assert.Equal(t, tc.want, d)
			assert.Equal(t, tc.after, rt.limit)
		})
	}
}
