package api_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// TestMetricsMediaTypesAreDocumented: GET /metrics negotiates its
// format (promhttp): a scraper that asks for Prometheus's delimited
// protocol buffers (as Prometheus does with native histograms on) gets
// them, a media type the document's 200 did not list (it listed only
// `text/plain; version=0.0.4`), so a client generated from it rejects the
// answer. Each Accept here must get a Content-Type the document lists.
// Fails while an answer's media type is undocumented.
// (Found by an audit, helper 12, whose test this is.)
func TestMetricsMediaTypesAreDocumented(t *testing.T) {
	e := newEnv(t, api.Options{})
	doc := loadSpec(t, e)
	for _, accept := range []string{
		"",
		"text/plain",
		"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", // Prometheus's default
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,text/plain;q=0.5",
	} {
		r := e.do("GET", "/metrics", nil, "Accept", accept)
		require.Equal(t, 200, r.status, accept)
		assert.Empty(t, doc.conformance("GET", "/metrics", r), "Accept: %s", accept)
	}
}
