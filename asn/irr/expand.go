package irr

import (
	"context"
	"fmt"
	"strings"

	"github.com/asfence/asfence/asn/rpsl"
)

// DefaultMaxDepth limits AS-SET nesting when none is configured.
const DefaultMaxDepth = 10

// setAnswer is what a registry says about one as-set.
type setAnswer struct {
	found   bool
	members []string
	// source is the database the set came from, when known.
	source string
}

// setLookup answers non-recursive member queries for a batch of set names,
// in order. An unknown set is found=false, not an error.
type setLookup func(ctx context.Context, names []string) ([]setAnswer, error)

// member is one ASN found in an AS-SET, with the path of sets that led to
// it (root first) and the source of the set that listed it.
type member struct {
	asn    uint32
	path   []string
	source string
}

// expansion is the result of expanding a target's AS-SETs.
type expansion struct {
	members []member
	// skipped are private/reserved/documentation ASNs (left out, as bgpq4
	// does); invalid are member tokens that are neither an ASN nor an
	// as-set name.
	skipped []string
	invalid []string
	loops   int
}

// expandSets expands the roots level by level: every set of one level is
// looked up in one batch (one pipelined round trip), so the number of
// round trips is the nesting depth, not the number of sets. A set already
// seen under the same root is not expanded again (loop detection). Going
// deeper than maxDepth is an error: a truncated set must not look complete.
func expandSets(ctx context.Context, roots []string, maxDepth int, lookup setLookup) (*expansion, error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	type node struct {
		root int
		path []string
	}
	ex := &expansion{}
	visited := make([]map[string]bool, len(roots))
	seenASN := make([]map[uint32]bool, len(roots))
	var frontier []node
	for i, r := range roots {
		r = strings.ToUpper(r)
		visited[i] = map[string]bool{r: true}
		seenASN[i] = map[uint32]bool{}
		frontier = append(frontier, node{root: i, path: []string{r}})
	}
	memo := map[string]setAnswer{}
	for depth := 1; len(frontier) > 0; depth++ {
		if depth > maxDepth {
			n := frontier[0]
			return nil, fmt.Errorf("AS-SET %s: nested deeper than the depth limit %d (at %s); raise irr.max_depth", n.path[0], maxDepth, strings.Join(n.path, " > "))
		}
		var ask []string
		asked := map[string]bool{}
		for _, n := range frontier {
			name := n.path[len(n.path)-1]
			if _, ok := memo[name]; !ok && !asked[name] {
				asked[name] = true
				ask = append(ask, name)
			}
		}
		if len(ask) > 0 {
			answers, err := lookup(ctx, ask)
			if err != nil {
				return nil, err
			}
			for i, name := range ask {
				memo[name] = answers[i]
			}
		}
		var next []node
		for _, n := range frontier {
			a := memo[n.path[len(n.path)-1]]
			for _, m := range a.members {
				m = strings.ToUpper(m)
				if isASNToken(m) {
					v, err := rpsl.ParseASN(m)
					if err != nil {
						ex.invalid = append(ex.invalid, m)
						continue
					}
					if SpecialASN(v) {
						ex.skipped = append(ex.skipped, m)
						continue
					}
					if !seenASN[n.root][v] {
						seenASN[n.root][v] = true
						ex.members = append(ex.members, member{asn: v, path: n.path, source: a.source})
					}
					continue
				}
				if !validSetName(m) {
					ex.invalid = append(ex.invalid, m)
					continue
				}
				if visited[n.root][m] {
					for _, p := range n.path {
						if p == m {
							ex.loops++
							break
						}
					}
					continue
				}
				visited[n.root][m] = true
				path := make([]string, len(n.path)+1)
				copy(path, n.path)
				path[len(n.path)] = m
				next = append(next, node{root: n.root, path: path})
			}
		}
		frontier = next
	}
	return ex, nil
}

// isASNToken reports whether a member looks like an AS number (AS123,
// AS1.10) rather than a set name.
func isASNToken(m string) bool {
	if len(m) < 3 || m[0] != 'A' || m[1] != 'S' {
		return false
	}
	for _, c := range m[2:] {
		if !(c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}
