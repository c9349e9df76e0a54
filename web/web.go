// Package web is gatewayd's browser UI: static files embedded in the
// binary, served at / (the page) and under /ui/ (its modules, styles and
// the vendored uPlot). They hold no data: everything the page shows it
// asks of /api, with the user's token when access control is on. No build
// step: the files under static/ are what the browser gets.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
)

//go:embed static
var embedded embed.FS

// Prefix is where the assets are served; GET / serves the page itself.
const Prefix = "/ui/"

// CSP is the UI's Content-Security-Policy: scripts, styles, fetches and
// the event stream from this origin only; no inline script and no style
// attributes (the page sets styles through classes and the CSSOM); no
// plugins, no <base>, no native form posts, no framing. The API keeps its
// own, stricter policy (default-src 'none').
const CSP = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'none'"

// Files is the embedded tree, rooted at static/: index.html, app.css,
// js/…, vendor/…
func Files() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(err) // cannot happen: static/ is embedded
	}
	return sub
}

// asset is one file, ready to send: its bytes, gzipped once at start
// (when that is smaller), a content hash for revalidation, its type.
type asset struct {
	body, gz []byte
	etag     string
	ctype    string
}

// load reads every embedded file.
func load(files fs.FS) (map[string]*asset, error) {
	out := map[string]*asset{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := &asset{body: body, etag: `W/"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`, ctype: contentType(p)}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return err
		}
		if buf.Len() < len(body) {
			a.gz = buf.Bytes()
		}
		out[p] = a
		return nil
	})
	return out, err
}

// contentType is a file's type by extension. Module scripts must be
// served as JavaScript (the API's nosniff applies to them too).
func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".md", "":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}

var (
	loadOnce sync.Once
	loaded   map[string]*asset
)

// assets reads and gzips the files once, on first use.
func assets() map[string]*asset {
	loadOnce.Do(func() {
		var err error
		if loaded, err = load(Files()); err != nil {
			panic(fmt.Sprintf("web: embedded files: %v", err)) // cannot happen: they are compiled in
		}
	})
	return loaded
}

// The handlers go after the security-header middleware (the UI's CSP
// replaces the API's on their answers) and need no token: the files hold
// no data, and the page asks for a token itself when the API wants one.

// Page answers GET /: the page.
func Page(c *fiber.Ctx) error { return assets()["index.html"].send(c) }

// Asset answers GET /ui/*: the page's modules, styles and vendored files.
func Asset(c *fiber.Ctx) error {
	a, ok := assets()[strings.TrimPrefix(c.Path(), Prefix)]
	if !ok || c.Path() == Prefix+"index.html" {
		return fiber.ErrNotFound
	}
	return a.send(c)
}

// Register adds both routes to r, for an app without a route table.
func Register(r fiber.Router) {
	r.Get("/", Page)
	r.Get(Prefix+"*", Asset)
}

// send answers with the asset: 304 when the client's copy is current,
// gzipped when the client takes it. Browsers revalidate every load
// (no-cache), so a new binary's files are used at once.
func (a *asset) send(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, CSP)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, a.etag)
	c.Vary(fiber.HeaderAcceptEncoding)
	if etagMatch(c.Get(fiber.HeaderIfNoneMatch), a.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, a.ctype)
	if a.gz != nil && c.Context().Request.Header.HasAcceptEncoding("gzip") {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(a.gz)
	}
	return c.Send(a.body)
}

// etagMatch is If-None-Match's weak comparison: any listed tag, or *.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}
