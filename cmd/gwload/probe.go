package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// probeEnv, when set, makes gwload a status probe instead: a process of
// its own that polls like a dashboard on another machine. gwload hosts
// the simulator, and in the readings scenario the simulator encodes
// thousands of large frames; pollers in that process wait for its
// scheduler as well as for gatewayd, and their latencies measured gwload.
const probeEnv = "GWLOAD_STATUS_PROBE"

// probeReady is the probe's first line of output: it is about to poll.
const probeReady = "ready"

// probeMain runs the probe and exits when this process was started as
// one; false means it was not.
func probeMain() bool {
	if os.Getenv(probeEnv) == "" {
		return false
	}
	if err := runProbe(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gwload:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// probeSpec is what the parent sends the probe on its first line of
// stdin; the probe polls until stdin ends, then prints a probeResult.
type probeSpec struct {
	API     string        `json:"api"`
	Token   string        `json:"token"`
	IDs     []uuid.UUID   `json:"ids"`
	Pollers int           `json:"pollers"`
	Every   time.Duration `json:"every"`
	// Path, when set, is polled instead of a random gateway's status
	// (e.g. /health: does an answer that needs no actor wait as long?).
	Path string `json:"path,omitempty"`
}

type probeResult struct {
	Latencies []time.Duration `json:"latencies"`
	Failed    int             `json:"failed"`
}

// runProbe is the probe process: it reads its spec, polls single-gateway
// status from spec.Pollers clients, each every spec.Every, until stdin
// closes, and prints what it measured.
func runProbe(in io.Reader, out io.Writer) error {
	rd := bufio.NewReader(in)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("probe: read spec: %w", err)
	}
	var spec probeSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("probe: spec: %w", err)
	}
	if len(spec.IDs) == 0 || spec.Pollers < 1 || spec.Every <= 0 {
		return fmt.Errorf("probe: incomplete spec")
	}
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: spec.Pollers}}
	// The parent's measuring window starts when this line arrives, not
	// when the process was started: under load (and -race) starting a
	// process can take longer than a short window.
	if _, err := fmt.Fprintln(out, probeReady); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	quit := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, rd) // until the parent closes stdin
		close(quit)
	}()
	var res probeResult
	res.Latencies, res.Failed = poll(quit, spec.Pollers, spec.Every, func() error { return spec.once(client) })
	return json.NewEncoder(out).Encode(res)
}

// poll runs pollers clients, each calling once every every, until quit is
// closed; it returns the sorted latencies of the calls that succeeded and
// how many failed.
func poll(quit <-chan struct{}, pollers int, every time.Duration, once func() error) ([]time.Duration, int) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	per := make([][]time.Duration, pollers)
	for w := range pollers {
		wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-quit:
					return
				case <-t.C:
				}
				t0 := time.Now()
				if err := once(); err != nil {
					failed.Add(1)
					continue
				}
				per[w] = append(per[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	for _, p := range per {
		all = append(all, p...)
	}
	slices.Sort(all)
	return all, int(failed.Load())
}

// once makes one request: a random gateway's status, or spec.Path.
func (spec probeSpec) once(client *http.Client) error {
	path := "/gateways/" + spec.IDs[rand.IntN(len(spec.IDs))].String() + "/status"
	if spec.Path != "" {
		path = spec.Path
	}
	req, err := http.NewRequest("GET", spec.API+path, nil)
	if err != nil {
		return err
	}
	if spec.Token != "" {
		req.Header.Set("Authorization", "Bearer "+spec.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// startProbe starts a probe process polling as spec says; stop ends it and
// returns its sorted latencies and the number of failed requests.
func startProbe(spec probeSpec) (stop func() ([]time.Duration, int, error), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := json.Marshal(spec)
	if err == nil {
		_, err = stdin.Write(append(line, '\n'))
	}
	out := bufio.NewReader(stdout)
	if err == nil {
		var ready string
		ready, err = out.ReadString('\n')
		if err == nil && ready != probeReady+"\n" {
			err = fmt.Errorf("unexpected first line %q", ready)
		}
	}
	if err != nil {
		_ = stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("start status probe: %w", err)
	}
	return func() ([]time.Duration, int, error) {
		_ = stdin.Close()
		var res probeResult
		decErr := json.NewDecoder(out).Decode(&res)
		if err := cmd.Wait(); err != nil {
			return nil, 0, fmt.Errorf("status probe: %w", err)
		}
		if decErr != nil {
			return nil, 0, fmt.Errorf("status probe: %w", decErr)
		}
		return res.Latencies, res.Failed, nil
	}, nil
}
