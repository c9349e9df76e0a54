package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkScript drives one request shape: {id} is a random id from the ids
// file, {offset} a random offset below GWLOAD_MAXOFF, {n} a unique number.
const wrkScript = `
local ids = {}
for line in io.lines(os.getenv("GWLOAD_IDS")) do ids[#ids + 1] = line end
local method = os.getenv("GWLOAD_METHOD")
local pathT = os.getenv("GWLOAD_PATH")
local bodyT = os.getenv("GWLOAD_BODY") or ""
local maxoff = tonumber(os.getenv("GWLOAD_MAXOFF") or "0")
local headers = { ["Content-Type"] = "application/json" }
local token = os.getenv("GWLOAD_TOKEN") or ""
if token ~= "" then headers["Authorization"] = "Bearer " .. token end
local n = 0
local threads = 0
-- A pace holds each connection's requests apart (gwload -pace); without
-- one there is no delay function, so wrk adds no timer per request.
local pace = tonumber(os.getenv("GWLOAD_PACE_MS") or "0")
if pace > 0 then
  function delay() return pace end
end

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
  n = n + 1
  local p = pathT:gsub("{id}", ids[math.random(#ids)]):gsub("{offset}", tostring(math.random(0, maxoff)))
  local b = nil
  if bodyT ~= "" then b = bodyT:gsub("{n}", tostring(tid) .. "-" .. tostring(n)) end
  return wrk.format(method, p, headers, b)
end
`

type wrkResult struct {
	rate, p50, p99 float64 // req/s, ms, ms
	// requests is how many were answered in the run: the rate times
	// the run's own length, which is not the length asked for (wrk runs
	// whole seconds, at least one).
	requests int
	non2xx   int
	peakRSS  int
	// cores is the CPU wrk itself used, per second of its run.
	cores float64
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkCount   = regexp.MustCompile(`(?m)^\s+(\d+) requests in `)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: .*`)
)

// wrkLoad is one wrk run: who, how hard, for how long, and the request.
type wrkLoad struct {
	bin, base, token   string
	connections        int
	d, pace            time.Duration // pace > 0: each connection waits this long between requests (wrk: whole ms)
	method, path, body string
	ids                []string
	maxOffset          int
	rss                func() int
}

// wrk is a wrkLoad against this env's gatewayd at its options' size.
func (e *env) wrk(bin, method, path, body string, ids []string, maxOffset int) wrkLoad {
	return wrkLoad{bin: bin, base: strings.TrimSuffix(e.api, "/api"), token: e.token, connections: e.o.concurrency,
		d: e.o.duration, pace: e.o.pace, method: method, path: path, body: body, ids: ids, maxOffset: maxOffset, rss: e.rssKiB}
}

// runWrk runs w and samples its rss.
func runWrk(ctx context.Context, w wrkLoad) (wrkResult, error) {
	dir, err := os.MkdirTemp("", "gwload-wrk")
	if err != nil {
		return wrkResult{}, err
	}
	defer os.RemoveAll(dir)
	script, idFile := filepath.Join(dir, "load.lua"), filepath.Join(dir, "ids")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return wrkResult{}, err
	}
	if err := os.WriteFile(idFile, []byte(strings.Join(w.ids, "\n")+"\n"), 0o600); err != nil {
		return wrkResult{}, err
	}
	cmd := exec.CommandContext(ctx, w.bin, "-t2", "-c"+strconv.Itoa(w.connections), "-d"+strconv.Itoa(max(1, int(w.d.Seconds())))+"s",
		"--latency", "-s", script, w.base)
	cmd.Env = append(os.Environ(), "GWLOAD_IDS="+idFile, "GWLOAD_METHOD="+w.method, "GWLOAD_PATH="+w.path,
		"GWLOAD_BODY="+w.body, "GWLOAD_MAXOFF="+strconv.Itoa(w.maxOffset), "GWLOAD_TOKEN="+w.token,
		"GWLOAD_PACE_MS="+strconv.FormatInt(w.pace.Milliseconds(), 10))
	stopSampling := samplePeak(w.rss)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start).Seconds()
	peak := stopSampling()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	res, err := parseWrk(out)
	res.peakRSS = peak
	if st := cmd.ProcessState; st != nil && took > 0 {
		res.cores = (st.UserTime() + st.SystemTime()).Seconds() / took
	}
	return res, err
}

// parseWrk reads wrk's report (--latency): the rate, the count, p50 and
// p99, and the failures.
func parseWrk(out []byte) (wrkResult, error) {
	var res wrkResult
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("wrk printed no rate: %s", out)
	}
	res.rate, _ = strconv.ParseFloat(string(m[1]), 64)
	m = wrkCount.FindSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("wrk printed no request count: %s", out)
	}
	res.requests, _ = strconv.Atoi(string(m[1]))
	for _, p := range wrkPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(p[2]), 64)
		switch string(p[3]) {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if string(p[1]) == "50" {
			res.p50 = v
		} else {
			res.p99 = v
		}
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		res.non2xx, _ = strconv.Atoi(string(m[1]))
	}
	if se := wrkSockErr.Find(out); se != nil {
		return res, fmt.Errorf("wrk: %s", se)
	}
	return res, nil
}
