package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"time"
)

// overheadVariant is one way of running gatewayd for the overhead scenario.
type overheadVariant struct {
	name string
	env  []string
	auth bool // send the bearer token
}

// The default configuration, and the same with one cost taken away:
// the HTTP metrics (issue #15) or the token check (issue #16).
var overheadVariants = []overheadVariant{
	{"default", []string{"AUTH_ENABLED=true", "METRICS_ENABLED=true"}, true},
	{"metrics_off", []string{"AUTH_ENABLED=true", "METRICS_ENABLED=false"}, true},
	{"auth_off", []string{"AUTH_ENABLED=false", "METRICS_ENABLED=true"}, false},
}

// overhead (issues #15 and #16): GET /api/gateways/:id at o.concurrency
// clients against a gatewayd in each variant, o.overheadRounds rounds;
// each round runs the three variants back to back, in an order rotated
// from round to round so none always runs first (a warmer cache) or last
// (a busier neighbour). The ratios default/metrics_off and
// default/auth_off come from the same round; their medians are the
// figures.
func overhead(ctx context.Context, e *env, r *report) error {
	if e.o.target != "" {
		return fmt.Errorf("overhead restarts gatewayd with other settings; it needs its own")
	}
	if err := e.seed(ctx, e.o.crudRows); err != nil {
		return err
	}
	ids := idStrings(e.ids)
	wrk, _ := exec.LookPath("wrk")
	if wrk == "" {
		r.progressf("wrk not found; the Go client drives the load")
	}
	token := e.token
	defer func() { e.token = token }()
	rounds := max(e.o.overheadRounds, 1)
	rates, costs := map[string][]float64{}, map[string][]float64{}
	var metricsRatios, authRatios, metricsCPU, authCPU []float64
	for round := range rounds {
		order := slices.Clone(overheadVariants)
		for range round % len(order) {
			order = append(order[1:], order[0])
		}
		rate, cost := map[string]float64{}, map[string]float64{}
		for _, v := range order {
			// Reconciliation stays out of the measurement, as in crud.
			if _, err := e.startGatewayd(append([]string{"RECONCILE_INTERVAL=1h"}, v.env...)...); err != nil {
				return err
			}
			e.token = ""
			if v.auth {
				e.token = token
			}
			res, err := e.getByID(ctx, wrk, ids)
			e.stopGatewayd()
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			rate[v.name] = res.rate
			rates[v.name] = append(rates[v.name], res.rate)
			// The requests answered, counted: rate × -duration is not
			// their number (the run lasts longer than that, and wrk
			// rounds it to whole seconds, at least one).
			cost[v.name] = res.cpu / float64(res.requests+res.warmed) * 1e6
			costs[v.name] = append(costs[v.name], cost[v.name])
			r.progressf("round %d %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %.0f µs of gatewayd CPU per request",
				round+1, v.name, res.rate, res.p50, res.p99, cost[v.name])
			r.value(fmt.Sprintf("overhead_r%d_%s_rate", round+1, v.name), res.rate, "req/s")
			r.value(fmt.Sprintf("overhead_r%d_%s_p99", round+1, v.name), res.p99, "ms")
			r.value(fmt.Sprintf("overhead_r%d_%s_cpu_per_request", round+1, v.name), cost[v.name], "us")
		}
		metricsRatios = append(metricsRatios, rate["default"]/rate["metrics_off"])
		authRatios = append(authRatios, rate["default"]/rate["auth_off"])
		metricsCPU = append(metricsCPU, cost["default"]/cost["metrics_off"])
		authCPU = append(authCPU, cost["default"]/cost["auth_off"])
		r.value(fmt.Sprintf("overhead_r%d_metrics_on_vs_off", round+1), metricsRatios[round], "ratio")
		r.value(fmt.Sprintf("overhead_r%d_auth_on_vs_off", round+1), authRatios[round], "ratio")
		r.value(fmt.Sprintf("overhead_r%d_metrics_cpu_on_vs_off", round+1), metricsCPU[round], "ratio")
		r.value(fmt.Sprintf("overhead_r%d_auth_cpu_on_vs_off", round+1), authCPU[round], "ratio")
	}
	for _, v := range overheadVariants {
		r.value("overhead_"+v.name+"_rate_median", median(rates[v.name]), "req/s")
		r.value("overhead_"+v.name+"_cpu_per_request_median", median(costs[v.name]), "us")
	}
	// Rates: on/off (≥ 0.95 is the target); CPU per request: on/off
	// (≤ 1.05).
	r.value("overhead_metrics_on_vs_off", median(metricsRatios), "ratio")
	r.value("overhead_auth_on_vs_off", median(authRatios), "ratio")
	r.value("overhead_metrics_cpu_on_vs_off", median(metricsCPU), "ratio")
	r.value("overhead_auth_cpu_on_vs_off", median(authCPU), "ratio")
	return nil
}

// getByID waits for the gateways, warms up (the token cache, the pages of
// the table, the connections) and measures GET /api/gateways/:id.
func (e *env) getByID(ctx context.Context, wrk string, ids []string) (getResult, error) {
	if err := e.waitAuthenticated(len(ids), 2*time.Minute); err != nil {
		return getResult{}, err
	}
	get := func(int, int) error {
		return e.call("GET", "/gateways/"+ids[rand.IntN(len(ids))], nil, http.StatusOK, nil)
	}
	warm := min(max(e.o.duration/5, 100*time.Millisecond), 2*time.Second)
	// gatewayd's CPU per request, from here (the gateways are connected)
	// to the end: on a shared, noisy box it moves less than the rate,
	// which also depends on what the neighbours leave over. The warm-up's
	// requests are counted in it.
	cpu0 := e.cpuSeconds()
	w := e.load(ctx, warm, get)
	if err := w.err(); err != nil {
		return getResult{}, fmt.Errorf("warming up: %w", err)
	}
	warmed := len(w.latencies)
	if wrk != "" {
		res, err := runWrk(ctx, e.wrk(wrk, "GET", "/api/gateways/{id}", "", ids, 0))
		if err != nil {
			return getResult{}, err
		}
		if res.non2xx > 0 {
			return getResult{}, fmt.Errorf("wrk: %d requests failed", res.non2xx)
		}
		return getResult{res, warmed, e.cpuSeconds() - cpu0}, nil
	}
	res := e.load(ctx, e.o.duration, get)
	if err := res.err(); err != nil {
		return getResult{}, err
	}
	return getResult{wrkResult{rate: res.rate(), requests: len(res.latencies), p50: ms(percentile(res.latencies, 50)),
		p99: ms(percentile(res.latencies, 99)), peakRSS: res.peakRSS}, warmed, e.cpuSeconds() - cpu0}, nil
}

// getResult is one measurement, how many warm-up requests preceded it,
// and gatewayd's CPU seconds for both.
type getResult struct {
	wrkResult
	warmed int
	cpu    float64
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
