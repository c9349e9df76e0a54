package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wrk's report with --latency, as wrk 4.2 prints it.
const wrkSample = `Running 1s test @ http://127.0.0.1:3106
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.50us  401.22us   6.01ms   88.10%
    Req/Sec     4.91k   312.45     5.40k    70.00%
  Latency Distribution
     50%  735.00us
     75%    0.96ms
     90%    1.21ms
     99%    2.48ms
  9772 requests in 1.00s, 3.10MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   9757.14
Transfer/sec:      3.09MB
`

// overhead divides gatewayd's CPU by the requests answered; it took them
// to be rate × -duration, which is not their number when wrk runs longer
// than asked (whole seconds, at least one) or the Go client's last
// requests end after the deadline. wrk's own count is read instead.
func TestParseWrkReadsTheRequestCount(t *testing.T) {
	res, err := parseWrk([]byte(wrkSample))
	require.NoError(t, err)
	assert.Equal(t, 9772, res.requests)
	assert.InDelta(t, 9757.14, res.rate, 1e-9)
	assert.InDelta(t, 0.735, res.p50, 1e-9)
	assert.InDelta(t, 2.48, res.p99, 1e-9)
	assert.Equal(t, 12, res.non2xx)

	_, err = parseWrk([]byte("Requests/sec: 10\n"))
	assert.ErrorContains(t, err, "no request count")
	_, err = parseWrk([]byte(wrkSample + "  Socket errors: connect 0, read 0, write 0, timeout 3\n"))
	assert.ErrorContains(t, err, "timeout 3")
}
