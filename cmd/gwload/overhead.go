package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"strings"
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
	rates := map[string][]float64{}
	var metricsRatios, authRatios []float64
	for round := range rounds {
		order := slices.Clone(overheadVariants)
		for range round % len(order) {
			order = append(order[1:], order[0])
		}
		rate := map[string]float64{}
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
			r.progressf("round %d %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms", round+1, v.name, res.rate, res.p50, res.p99)
			r.value(fmt.Sprintf("overhead_r%d_%s_rate", round+1, v.name), res.rate, "req/s")
			r.value(fmt.Sprintf("overhead_r%d_%s_p99", round+1, v.name), res.p99, "ms")
		}
		metricsRatios = append(metricsRatios, rate["default"]/rate["metrics_off"])
		authRatios = append(authRatios, rate["default"]/rate["auth_off"])
		r.value(fmt.Sprintf("overhead_r%d_metrics_on_vs_off", round+1), metricsRatios[round], "ratio")
		r.value(fmt.Sprintf("overhead_r%d_auth_on_vs_off", round+1), authRatios[round], "ratio")
	}
	for _, v := range overheadVariants {
		r.value("overhead_"+v.name+"_rate_median", median(rates[v.name]), "req/s")
	}
	r.value("overhead_metrics_on_vs_off", median(metricsRatios), "ratio")
	r.value("overhead_auth_on_vs_off", median(authRatios), "ratio")
	return nil
}

// getByID waits for the gateways, warms up (the token cache, the pages of
// the table, the connections) and measures GET /api/gateways/:id.
func (e *env) getByID(ctx context.Context, wrk string, ids []string) (wrkResult, error) {
	if err := e.waitAuthenticated(len(ids), 2*time.Minute); err != nil {
		return wrkResult{}, err
	}
	get := func(int, int) error {
		return e.call("GET", "/gateways/"+ids[rand.IntN(len(ids))], nil, http.StatusOK, nil)
	}
	warm := min(max(e.o.duration/5, 100*time.Millisecond), 2*time.Second)
	if w := runLoad(ctx, e.o.concurrency, warm, e.rssKiB, get); w.errors > 0 {
		return wrkResult{}, fmt.Errorf("%d requests failed while warming up", w.errors)
	}
	if wrk != "" {
		res, err := runWrk(ctx, wrk, strings.TrimSuffix(e.api, "/api"), e.token, e.o.concurrency, e.o.duration, "GET",
			"/api/gateways/{id}", "", ids, 0, e.rssKiB)
		if err != nil {
			return res, err
		}
		if res.non2xx > 0 {
			return res, fmt.Errorf("wrk: %d requests failed", res.non2xx)
		}
		return res, nil
	}
	res := runLoad(ctx, e.o.concurrency, e.o.duration, e.rssKiB, get)
	if res.errors > 0 {
		return wrkResult{}, fmt.Errorf("%d requests failed", res.errors)
	}
	return wrkResult{rate: res.rate(), p50: ms(percentile(res.latencies, 50)), p99: ms(percentile(res.latencies, 99)),
		peakRSS: res.peakRSS}, nil
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
