package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/offline-push/offline-push/shared/cfn"
)

// routeTable picks the function for a request the way an API Gateway HTTP
// API does: among the routes whose method and path match, the most specific
// wins (a literal segment beats a {param}, which beats a greedy {param+}; an
// exact method beats ANY); a request no route matches goes to $default.
type routeTable struct {
	routes []route
	// fallback is the function of the $default route, "" when none.
	fallback string
}

type route struct {
	key      string // as in the template: "PUT /v1/apps/{app}"
	method   string // "ANY" matches every method
	segments []string
	function string
}

// match is the outcome of routing one request.
type match struct {
	routeKey string
	function string
	params   map[string]string
}

func newRouteTable(st *cfn.Stack) (*routeTable, error) {
	rt := &routeTable{}
	ids := make([]string, 0, len(st.Functions))
	for id := range st.Functions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, key := range st.Functions[id].HTTPRoutes {
			if key == "$default" {
				if rt.fallback != "" {
					return nil, fmt.Errorf("$default is served by both %s and %s", rt.fallback, id)
				}
				rt.fallback = id
				continue
			}
			method, path, ok := strings.Cut(key, " ")
			if !ok || !strings.HasPrefix(path, "/") {
				return nil, fmt.Errorf("function %s: route key %q is not \"METHOD /path\"", id, key)
			}
			rt.routes = append(rt.routes, route{key: key, method: method, segments: splitPath(path), function: id})
		}
	}
	return rt, nil
}

func splitPath(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

// lookup routes a request; rawPath is the path as sent, still
// percent-encoded. Path parameters come back decoded.
func (rt *routeTable) lookup(method, rawPath string) (match, bool) {
	segs := splitPath(rawPath)
	var best *route
	var bestScore []int
	var bestParams map[string]string
	for i := range rt.routes {
		r := &rt.routes[i]
		if r.method != "ANY" && r.method != method {
			continue
		}
		params, score, ok := r.match(segs)
		if !ok {
			continue
		}
		if r.method != "ANY" {
			score = append(score, 1)
		} else {
			score = append(score, 0)
		}
		if best == nil || moreSpecific(score, bestScore) {
			best, bestScore, bestParams = r, score, params
		}
	}
	if best != nil {
		return match{routeKey: best.key, function: best.function, params: bestParams}, true
	}
	if rt.fallback != "" {
		return match{routeKey: "$default", function: rt.fallback}, true
	}
	return match{}, false
}

// match matches path segments against the route's and scores each segment:
// 2 literal, 1 {param}, 0 greedy {param+}.
func (r *route) match(segs []string) (map[string]string, []int, bool) {
	params := map[string]string{}
	var score []int
	for i, pat := range r.segments {
		if strings.HasPrefix(pat, "{") && strings.HasSuffix(pat, "+}") {
			if i >= len(segs) {
				return nil, nil, false
			}
			rest, err := url.PathUnescape(strings.Join(segs[i:], "/"))
			if err != nil || rest == "" {
				return nil, nil, false
			}
			params[pat[1:len(pat)-2]] = rest
			return params, append(score, 0), true
		}
		if i >= len(segs) {
			return nil, nil, false
		}
		if strings.HasPrefix(pat, "{") && strings.HasSuffix(pat, "}") {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, nil, false
			}
			params[pat[1:len(pat)-1]] = v
			score = append(score, 1)
			continue
		}
		if pat != segs[i] {
			return nil, nil, false
		}
		score = append(score, 2)
	}
	if len(segs) != len(r.segments) {
		return nil, nil, false
	}
	return params, score, true
}

// moreSpecific compares two scores segment by segment, the first difference
// deciding.
func moreSpecific(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}
