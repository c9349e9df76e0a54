package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds gatewayd once for the tests that run the real thing, or
// returns testutil.GatewaydBinary's (make test builds it first).
func binary(t *testing.T) string {
	t.Helper()
	if bin := testutil.GatewaydBinary(); bin != "" {
		return bin
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatewayd-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "gatewayd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// readmeBlocks returns the ```sh blocks of README.md that follow a
// <!-- readme-test --> line.
func readmeBlocks(t *testing.T) []string {
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var blocks []string
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "<!-- readme-test -->" {
			continue
		}
		require.Less(t, i+1, len(lines))
		require.Equal(t, "```sh", lines[i+1], "a readme-test marker stands right before a ```sh block")
		var b []string
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			b = append(b, lines[i])
		}
		blocks = append(blocks, strings.Join(b, "\n"))
	}
	return blocks
}

// The README's API examples, run as written against a live gatewayd and
// the demo's simulated gateway, so they cannot rot. Only the addresses and
// the token file's place differ from `make run`'s.
func TestREADMEExamplesRun(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "the README's examples need %s (apt-get install %s)", tool, tool)
	}
	blocks := readmeBlocks(t)
	require.NotEmpty(t, blocks, "README.md has examples marked <!-- readme-test -->")

	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	for _, name := range []string{"demo-gw-1", "demo-gw-2"} {
		sim.Add(name, ctctest.Config{Email: "operator@example.com", Password: "demo-password"})
	}

	dbURL := tmpl.New(t)
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + dbURL}
	var minted, mintLog bytes.Buffer
	require.Equal(t, 0, run([]string{"token", "create", "--name", "readme", "--role", "admin"}, env, &minted, &mintLog), mintLog.String())
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	require.NoError(t, os.WriteFile(tokenFile, minted.Bytes(), 0o600))

	gw := startServe(t, append(env, "CHAOS_ENABLED=true"))
	logs := gw.logs
	base := fmt.Sprintf("http://127.0.0.1:%d", gw.port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/api/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, "gatewayd never became ready")

	// What make run's demo leaves: demo-gw-2 registered (the simulator
	// section's example breaks and heals it).
	post := func(path, body string) string {
		req, err := http.NewRequest("POST", base+"/api"+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(minted.String()))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out struct{ ID string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		require.Equal(t, 201, resp.StatusCode)
		return out.ID
	}
	org := post("/organizations", `{"name":"gatewayd demo"}`)
	factory := post("/factories", `{"organization_id":"`+org+`","name":"Demo Plant"}`)
	post("/gateways", `{"factory_id":"`+factory+`","gateway_id":"demo-gw-2","name":"demo-gw-2","url":"ws://`+sim.Addr()+
		`/gw/demo-gw-2","email":"operator@example.com","password":"demo-password"}`)

	for i, block := range blocks {
		script := strings.NewReplacer("http://127.0.0.1:3000", base, "127.0.0.1:7070", sim.Addr(),
			".data/demo/admin-token", tokenFile).Replace(block)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		sh := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		var out, errb bytes.Buffer
		sh.Stdout, sh.Stderr = &out, &errb
		err := sh.Run()
		cancel()
		require.NoError(t, err, "README block %d failed\nstdout:\n%s\nstderr:\n%s\ngatewayd:\n%s", i+1, out.String(), errb.String(), logs.String())
		t.Logf("README block %d:\n%s", i+1, out.String())
		if i == 0 {
			o := out.String()
			for _, want := range []string{"Acme Corp", "Plant 1", `"state":"AUTHENTICATED"`, `{"AUTHENTICATED":1,`,
				`"status":"COMPLETE"`, `"unit":"g"`, "\n15m0s\n", "DISCONNECTED", "Line 4 (north)", "\n202\n204\n"} {
				assert.Contains(t, o, want)
			}
		}
		if strings.Contains(block, "/control/demo-gw-2") {
			assert.Contains(t, out.String(), `{"state":"AUTH_FAILED","last_error":"Invalid email or password"}`)
			assert.Contains(t, out.String(), "demo-gw-2 is AUTHENTICATED again")
		}
	}
}

// The README's configuration table lists every variable gatewayd reads,
// with the default --help prints (config.Variables is the one source).
func TestREADMEListsEveryVariable(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(raw)
	for _, v := range config.Variables {
		row := "| `" + v.Name + "` | "
		i := strings.Index(readme, row)
		if !assert.GreaterOrEqual(t, i, 0, "README has no row for %s", v.Name) {
			continue
		}
		cell := readme[i+len(row):]
		cell = cell[:strings.Index(cell, " |")]
		if v.Default != "" {
			assert.Equal(t, "`"+v.Default+"`", cell, "%s's default", v.Name)
		}
	}
}

// (Found by an audit, helper 1, whose test this is.)
// README, Quick start: "`make test` (`scripts/test.sh`) builds every
// package's test binary with `-race` and runs them, four at a time, the
// longest first." The Makefile runs them TESTJOBS ?= 3 at a time, and the
// README itself says so a few lines on ("It runs 3 test binaries at a
// time (`TESTJOBS`)"). A newcomer reading the first bullet is told four.
func TestREADMEMakeTestParallelismMatchesMakefile(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^TESTJOBS \?= (\d+)$`).FindSubmatch(mk)
	require.NotNil(t, m, "Makefile sets TESTJOBS ?= N")
	jobs, _ := strconv.Atoi(string(m[1]))

	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	words := map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
	claims := regexp.MustCompile(`runs them,\s+(\w+) at a time|runs\s+(\w+) test binaries at a time`).FindAllSubmatch(readme, -1)
	require.NotEmpty(t, claims, "README says how many test binaries make test runs at once")
	for _, c := range claims {
		w := string(c[1]) + string(c[2])
		n, ok := words[w]
		if !ok {
			n, _ = strconv.Atoi(w)
		}
		assert.Equal(t, jobs, n, "README %q: the Makefile's TESTJOBS is %d", string(c[0]), jobs)
	}
}
