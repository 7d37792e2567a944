package filters

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// UnifiedDiff returns the unified diff (3 lines of context) that turns a
// into b, or "" when they are equal. It anchors on lines that occur once
// in each file (as Go's internal diff does), which is fast on large
// configuration files and gives readable hunks for sorted lists.
func UnifiedDiff(oldName, newName string, a, b []byte) string {
	if string(a) == string(b) {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	ops := lineDiff(x, y)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	const ctx = 3
	// Group the edit script into hunks separated by more than 2*ctx equal lines.
	i := 0
	for i < len(ops) {
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(i-ctx, 0)
		for start < i && ops[start].kind != ' ' {
			start++
		}
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, run)
				break
			}
			end = run
		}
		h := ops[start:end]
		aStart, bStart := h[0].ai, h[0].bi
		var aLen, bLen int
		for _, op := range h {
			if op.kind != '+' {
				aLen++
			}
			if op.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, op := range h {
			sb.WriteByte(op.kind)
			sb.WriteString(op.text)
			if !strings.HasSuffix(op.text, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return sb.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return strconv.Itoa(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// splitLines splits after each newline, keeping it.
func splitLines(b []byte) []string {
	s := string(b)
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

type diffOp struct {
	kind   byte // ' ', '-', '+'
	text   string
	ai, bi int // line index in a and b where the op applies
}

// lineDiff computes an edit script. Lines unique to both sides are
// anchors; the longest increasing sequence of anchors is kept (patience
// sorting); between anchors, common leading and trailing lines are kept
// and the rest is deleted and inserted.
func lineDiff(x, y []string) []diffOp {
	count := func(lines []string) map[string]int {
		m := make(map[string]int, len(lines))
		for _, l := range lines {
			m[l]++
		}
		return m
	}
	cx, cy := count(x), count(y)
	posY := make(map[string]int)
	for j, l := range y {
		if cy[l] == 1 && cx[l] == 1 {
			posY[l] = j
		}
	}
	type pair struct{ i, j int }
	var pairs []pair
	for i, l := range x {
		if j, ok := posY[l]; ok {
			pairs = append(pairs, pair{i, j})
		}
	}
	// Longest increasing subsequence of j (pairs are ordered by i).
	var tails []int // index into pairs
	prev := make([]int, len(pairs))
	for k, p := range pairs {
		n := sort.Search(len(tails), func(t int) bool { return pairs[tails[t]].j >= p.j })
		if n > 0 {
			prev[k] = tails[n-1]
		} else {
			prev[k] = -1
		}
		if n == len(tails) {
			tails = append(tails, k)
		} else {
			tails[n] = k
		}
	}
	var anchors []pair
	if len(tails) > 0 {
		for k := tails[len(tails)-1]; k >= 0; k = prev[k] {
			anchors = append(anchors, pairs[k])
		}
		slices.Reverse(anchors)
	}
	anchors = append(anchors, pair{len(x), len(y)}) // sentinel
	var ops []diffOp
	i, j := 0, 0
	for _, an := range anchors {
		// Gap x[i:an.i] vs y[j:an.j]: keep common head and tail.
		for i < an.i && j < an.j && x[i] == y[j] {
			ops = append(ops, diffOp{' ', x[i], i, j})
			i++
			j++
		}
		ei, ej := an.i, an.j
		for ei > i && ej > j && x[ei-1] == y[ej-1] {
			ei--
			ej--
		}
		for k := i; k < ei; k++ {
			ops = append(ops, diffOp{'-', x[k], k, j})
		}
		for k := j; k < ej; k++ {
			ops = append(ops, diffOp{'+', y[k], ei, k})
		}
		for ei < an.i {
			ops = append(ops, diffOp{' ', x[ei], ei, ej})
			ei++
			ej++
		}
		i, j = an.i, an.j
		if an.i < len(x) {
			ops = append(ops, diffOp{' ', x[i], i, j})
			i++
			j++
		}
	}
	return ops
}
