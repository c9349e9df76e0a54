package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fakeGatewayd serves h on a loopback port in gatewayd's place, and an
// env and report aimed at it: a scenario's checks meet answers (a slow
// 503, a stream that ends early) that a real gatewayd gives only by
// chance. out receives the figures.
func fakeGatewayd(t *testing.T, h http.HandlerFunc) (e *env, r *report, out *bytes.Buffer) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	out = new(bytes.Buffer)
	o := &options{concurrency: 4, duration: 100 * time.Millisecond, out: out, progress: new(bytes.Buffer)}
	return &env{o: o, client: &http.Client{Timeout: 5 * time.Second}, api: srv.URL + "/api"}, &report{o: o}, out
}
