package web_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/web"
)

// Budget is the most the UI may weigh: every embedded file, gzipped.
const Budget = 150 << 10

func gzipped(t *testing.T, b []byte) int {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	_, err = zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Len()
}

// Every embedded asset gzipped fits the budget (what a browser downloads
// the first time, the lazily loaded chart library included).
func TestAssetBudget(t *testing.T) {
	t.Parallel()
	files := web.Files()
	total, raw := 0, 0
	var lines []string
	require.NoError(t, fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		require.NoError(t, err)
		n := gzipped(t, b)
		total += n
		raw += len(b)
		lines = append(lines, fmt.Sprintf("  %-36s %7d B  %6d B gzipped", p, len(b), n))
		return nil
	}))
	sort.Strings(lines)
	t.Logf("web UI assets:\n%s\ntotal %d B (%.1f KiB), gzipped %d B (%.1f KiB) of a %d KiB budget",
		strings.Join(lines, "\n"), raw, float64(raw)/1024, total, float64(total)/1024, Budget>>10)
	assert.LessOrEqual(t, total, Budget, "the UI's assets, gzipped, are over budget")
}

// uiApp is the UI alone on a fiber app. Its tests call app.Test with no
// time limit (-1): fiber's default of 1 s fails a request that was merely
// slow on a loaded machine, and these tests are not about speed.
func uiApp() *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	web.Register(app)
	return app
}

// The page and its assets: types, the UI's CSP, revalidation, gzip.
func TestServing(t *testing.T) {
	t.Parallel()
	app := uiApp()
	index, err := fs.ReadFile(web.Files(), "index.html")
	require.NoError(t, err)
	for _, tc := range []struct{ path, ctype string }{
		{"/", "text/html; charset=utf-8"},
		{"/ui/js/app.js", "text/javascript; charset=utf-8"},
		{"/ui/app.css", "text/css; charset=utf-8"},
		{"/ui/favicon.svg", "image/svg+xml"},
		{"/ui/vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
	} {
		resp, err := app.Test(httptest.NewRequest("GET", tc.path, nil), -1)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, 200, resp.StatusCode, tc.path)
		assert.Equal(t, tc.ctype, resp.Header.Get("Content-Type"), tc.path)
		assert.Equal(t, web.CSP, resp.Header.Get("Content-Security-Policy"), tc.path)
		assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), tc.path)
		assert.Empty(t, resp.Header.Get("Content-Encoding"), "no gzip unless asked")
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag, tc.path)
		if tc.path == "/" {
			assert.Equal(t, string(index), string(body))
		}

		// Revalidation: the same tag is 304 with no body.
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = app.Test(req, -1)
		require.NoError(t, err)
		assert.Equal(t, 304, resp.StatusCode, tc.path)

		// Gzip when the client takes it.
		req = httptest.NewRequest("GET", tc.path, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		resp, err = app.Test(req, -1)
		require.NoError(t, err)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			got, err := io.ReadAll(zr)
			require.NoError(t, err)
			file := strings.TrimPrefix(tc.path, web.Prefix)
			if tc.path == "/" {
				file = "index.html"
			}
			want, err := fs.ReadFile(web.Files(), file)
			require.NoError(t, err)
			assert.Equal(t, want, got, tc.path)
		}
		assert.Contains(t, resp.Header.Get("Vary"), "Accept-Encoding", tc.path)
	}
	for _, p := range []string{"/ui/nope.js", "/ui/", "/ui/index.html", "/ui/js"} {
		resp, err := app.Test(httptest.NewRequest("GET", p, nil), -1)
		require.NoError(t, err)
		assert.Equal(t, 404, resp.StatusCode, p)
	}
}

var (
	srcHref   = regexp.MustCompile(`(?:src|href)="(/[^"]*)"`)
	importRe  = regexp.MustCompile(`(?m)^import [^;]*? from '(\./[^']+)';`)
	inlineTag = regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`)
	unsafeJS  = regexp.MustCompile(`\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|setAttribute\(\s*'style'|\beval\(|new Function\(`)
)

// What the page loads exists, and nothing in it needs 'unsafe-inline':
// no inline script, no style attribute, no markup built from strings.
func TestPageIsWholeAndStrict(t *testing.T) {
	t.Parallel()
	files := web.Files()
	index, err := fs.ReadFile(files, "index.html")
	require.NoError(t, err)
	for _, m := range srcHref.FindAllStringSubmatch(string(index), -1) {
		if m[1] == "/api/docs" || m[1] == "#/" || strings.HasPrefix(m[1], "#") {
			continue // links, not loads
		}
		assert.True(t, strings.HasPrefix(m[1], web.Prefix), "index.html loads %s from outside %s", m[1], web.Prefix)
		_, err := fs.Stat(files, strings.TrimPrefix(m[1], web.Prefix))
		assert.NoError(t, err, "index.html refers to %s", m[1])
	}
	assert.NotRegexp(t, inlineTag, string(index), "inline script")
	assert.NotContains(t, string(index), "style=", "style attribute")
	assert.NotContains(t, string(index), "<style", "style element")
	js, err := fs.Glob(files, "js/*.js")
	require.NoError(t, err)
	require.NotEmpty(t, js)
	for _, p := range js {
		assert.Contains(t, string(index), `"/ui/`+p+`"`, "index.html loads or preloads every module")
		b, err := fs.ReadFile(files, p)
		require.NoError(t, err)
		src := string(b)
		for _, m := range importRe.FindAllStringSubmatch(src, -1) {
			_, err := fs.Stat(files, path.Join(path.Dir(p), m[1]))
			assert.NoError(t, err, "%s imports %s", p, m[1])
		}
		assert.Empty(t, unsafeJS.FindString(src), "%s builds markup from strings, sets a style attribute or evaluates code", p)
	}
}
