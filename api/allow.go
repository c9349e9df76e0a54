package api

import (
	"slices"
	"strings"
)

// allowTable answers the Allow header of a 405 (RFC 9110 §15.5.6: the
// server must list what the target resource takes). Fiber's own list
// asks every method's routes separately, so it named PUT and DELETE for
// /api/gateways/status (they match /api/gateways/:id); here a path takes
// the methods of the first route pattern it matches, in the table's
// order, as the router does.
type allowTable []allowPattern

type allowPattern struct {
	pattern  string   // as routes.go wrote it
	segments []string // ":name" matches any one non-empty segment
	wildcard bool     // the last segment was "*": anything below the prefix
	methods  string   // e.g. "GET, HEAD, PUT, DELETE"
}

// methodOrder is the order methods are listed in.
var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "DELETE"}

func newAllowTable(table []route) allowTable {
	var patterns []string
	byPattern := map[string][]string{}
	for _, r := range table {
		if _, seen := byPattern[r.path]; !seen {
			patterns = append(patterns, r.path)
		}
		byPattern[r.path] = append(byPattern[r.path], r.method)
		if hasHead(r) {
			byPattern[r.path] = append(byPattern[r.path], "HEAD")
		}
	}
	t := make(allowTable, 0, len(patterns))
	for _, p := range patterns {
		ms := byPattern[p]
		slices.SortFunc(ms, func(a, b string) int { return slices.Index(methodOrder, a) - slices.Index(methodOrder, b) })
		ap := allowPattern{pattern: p, methods: strings.Join(slices.Compact(ms), ", ")}
		segs := splitPath(p)
		if n := len(segs); n > 0 && strings.HasSuffix(segs[n-1], "*") {
			ap.wildcard = true
			if prefix := strings.TrimSuffix(segs[n-1], "*"); prefix != "" {
				segs[n-1] = prefix
			} else {
				segs = segs[:n-1]
			}
		}
		ap.segments = segs
		t = append(t, ap)
	}
	return t
}

// lookup gives the Allow value for a request path, "" when no route's
// pattern matches it. Matching is as the router's: case-insensitive, a
// trailing slash ignored.
func (t allowTable) lookup(path string) string {
	segs := splitPath(strings.ToLower(path))
	for _, p := range t {
		if p.match(segs) {
			return p.methods
		}
	}
	return ""
}

// route names, for the metrics, the route of a request a middleware
// answered before the router (a 415, a CORS preflight, a 404 or 405): the
// pattern its path matches if that route takes its method (a preflight
// asks about any; an OPTIONS that is none is the router's 405, as any
// other method the route does not take), else unmatchedLabel. A path's
// id never becomes a label.
func (t allowTable) route(method, path string, preflight bool) string {
	segs := splitPath(strings.ToLower(path))
	for _, p := range t {
		if !p.match(segs) {
			continue
		}
		if preflight || slices.Contains(strings.Split(p.methods, ", "), method) {
			return p.pattern
		}
		return unmatchedLabel
	}
	return unmatchedLabel
}

func (p allowPattern) match(segs []string) bool {
	if p.wildcard {
		if len(segs) < len(p.segments) {
			return false
		}
		segs = segs[:len(p.segments)]
	} else if len(segs) != len(p.segments) {
		return false
	}
	for i, s := range p.segments {
		if strings.HasPrefix(s, ":") {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if segs[i] != s {
			return false
		}
	}
	return true
}

// splitPath splits "/a/b/" into ["a", "b"]; "/" into none.
func splitPath(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}
