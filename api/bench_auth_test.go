package api_test

import (
	"context"
	"io"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// BenchmarkRequestOverhead: what the token check and the HTTP metrics
// add to one request, without a socket or a database round trip (the
// fake runtime answers GET /api/gateways/status at once), so that the
// difference between the cases is the middleware alone. gwload overhead
// measures the same on the whole GET-by-id path.
func BenchmarkRequestOverhead(b *testing.B) {
	for _, c := range []struct {
		name string
		opts api.Options
	}{
		{"auth_on_metrics_on", api.Options{AuthEnabled: true}},
		{"auth_on_metrics_off", api.Options{AuthEnabled: true, MetricsDisabled: true}},
		{"auth_off_metrics_on", api.Options{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool, _ := tmpl.Pool(b)
			sealer, err := store.NewSealer(testutil.Key)
			require.NoError(b, err)
			st := store.New(pool, sealer)
			// The access log goes nowhere, at the production level.
			app := api.New(st, &fakeRuntime{ready: true}, zerolog.New(io.Discard).Level(zerolog.InfoLevel), c.opts)
			_, token, err := st.CreateToken(context.Background(), "bench", gatewayd.RoleViewer, nil)
			require.NoError(b, err)
			h := app.Handler()
			path := "/api/gateways/status"
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod("GET")
				ctx.Request.SetRequestURI(path)
				ctx.Request.Header.Set("Authorization", "Bearer "+token)
				h(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}
