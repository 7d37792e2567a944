package filters

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
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

// IncrementalCommands returns the commands that change a router holding
// the configuration rendered from old into the one rendered from new,
// touching only what changed. The bool is false when the vendor (or this
// particular change) needs a full replace; the string then says why.
func IncrementalCommands(vendor string, old, new *policy.Intent, o RenderOptions) (string, bool, error) {
	sp, ok := spec(vendor)
	if !ok {
		return "", false, fmt.Errorf("incremental: unknown vendor %q", vendor)
	}
	if old == nil || new == nil {
		return "", false, fmt.Errorf("incremental %s: both intents are needed", vendor)
	}
	n := o.Names.WithDefaults()
	if err := n.validate(); err != nil {
		return "", false, fmt.Errorf("incremental %s: %w", vendor, err)
	}
	if !sp.incremental {
		return "full replace: " + sp.fullReplaceW, false, nil
	}
	a, b := Prepare(old), Prepare(new)
	if o.MaxEntries > 0 {
		for _, l := range b.lists(vendor, sp, n) {
			if l.Entries > o.MaxEntries {
				return "", false, &CapacityError{Vendor: vendor, List: l.Name, Entries: l.Entries, Max: o.MaxEntries}
			}
		}
	}
	d := delta{a: a, b: b, n: n}
	var out string
	var why string
	switch vendor {
	case "cisco-ios":
		out = d.ios()
	case "frr":
		out = d.frr()
	case "junos":
		out, why = d.junos()
	case "nokia-sros":
		out, why = d.sros()
	case "mikrotik":
		out = d.mikrotik()
	case "nftables":
		out = d.nftables()
	}
	if why != "" {
		return "full replace: " + why, false, nil
	}
	return out, true, nil
}

// delta holds the two prepared intents being compared.
type delta struct {
	a, b *Prepared
	n    Names
}

// setDiff returns the elements only in a and only in b, in a's and b's
// order.
func setDiff[T comparable](a, b []T) (removed, added []T) {
	inA := make(map[T]bool, len(a))
	for _, x := range a {
		inA[x] = true
	}
	inB := make(map[T]bool, len(b))
	for _, x := range b {
		inB[x] = true
		if !inA[x] {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !inB[x] {
			removed = append(removed, x)
		}
	}
	return removed, added
}

func (d delta) changed() bool {
	r4, a4 := setDiff(d.a.v4, d.b.v4)
	r6, a6 := setDiff(d.a.v6, d.b.v6)
	ra, aa := setDiff(d.a.asns, d.b.asns)
	rc4, ac4 := setDiff(d.a.cov4, d.b.cov4)
	rc6, ac6 := setDiff(d.a.cov6, d.b.cov6)
	return len(r4)+len(a4)+len(r6)+len(a6)+len(ra)+len(aa)+len(rc4)+len(ac4)+len(rc6)+len(ac6) > 0
}

// summary is the comment line at the top of incremental commands.
func (d delta) summary() string {
	c := func(a, b int) string { return fmt.Sprintf("+%d -%d", a, b) }
	r4, a4 := setDiff(d.a.v4, d.b.v4)
	r6, a6 := setDiff(d.a.v6, d.b.v6)
	ra, aa := setDiff(d.a.asns, d.b.asns)
	return fmt.Sprintf("asfence incremental update: IPv4 entries %s, IPv6 entries %s, origin ASNs %s",
		c(len(a4), len(r4)), c(len(a6), len(r6)), c(len(aa), len(ra)))
}

// ciscoEntry is one prefix-list line as IOS and FRR print it.
func ciscoEntry(kw, name string, r prefixset.Range) string {
	return fmt.Sprintf("%s prefix-list %s permit %s", kw, name, r)
}

// ciscoLists returns the prefix-list lines of both families (with the
// placeholder of an empty list), as rendered.
func ciscoLists(p *Prepared, n Names, empty4, empty6 string) []string {
	var out []string
	for _, r := range p.v4 {
		out = append(out, ciscoEntry("ip", n.PrefixV4, r))
	}
	if len(p.v4) == 0 {
		out = append(out, "ip prefix-list "+n.PrefixV4+" deny "+empty4)
	}
	for _, r := range p.v6 {
		out = append(out, ciscoEntry("ipv6", n.PrefixV6, r))
	}
	if len(p.v6) == 0 {
		out = append(out, "ipv6 prefix-list "+n.PrefixV6+" deny "+empty6)
	}
	return out
}

// addThenRemove writes additions before removals, so that a list is never
// empty in between (a route-map matching a missing list behaves
// differently per platform).
func addThenRemove(sb *strings.Builder, removed, added []string) {
	for _, l := range added {
		sb.WriteString(l + "\n")
	}
	for _, l := range removed {
		sb.WriteString("no " + l + "\n")
	}
}

// ciscoStyle writes what IOS and FRR share: the header, prefix-list entries
// (added before removed, so no list is ever empty) and the as-path list,
// with the route-map term that uses it appearing or going with it. It
// reports false when nothing changed.
func (d delta) ciscoStyle(sb *strings.Builder, how, any4, any6, asPathCmd, termEnd string) bool {
	fmt.Fprintf(sb, "! %s\n", d.summary())
	if !d.changed() {
		sb.WriteString("! nothing changed\n")
		return false
	}
	sb.WriteString(how)
	rem, add := setDiff(ciscoLists(d.a, d.n, any4, any6), ciscoLists(d.b, d.n, any4, any6))
	addThenRemove(sb, rem, add)
	asLine := func(a uint32) string { return fmt.Sprintf("%s %s permit _%d$", asPathCmd, d.n.ASPath, a) }
	ra, aa := setDiff(d.a.asns, d.b.asns)
	for _, a := range aa {
		sb.WriteString(asLine(a) + "\n")
	}
	if len(d.a.asns) == 0 && len(d.b.asns) > 0 {
		fmt.Fprintf(sb, "route-map %s deny 30\n match as-path %s\n%s", d.n.Policy, d.n.ASPath, termEnd)
	}
	if len(d.b.asns) == 0 && len(d.a.asns) > 0 {
		fmt.Fprintf(sb, "no route-map %s deny 30\n", d.n.Policy)
	}
	for _, a := range ra {
		sb.WriteString("no " + asLine(a) + "\n")
	}
	return true
}

func (d delta) ios() string {
	var sb strings.Builder
	if !d.ciscoStyle(&sb, "! paste in configuration mode, then: clear ip bgp * soft in\n", "0.0.0.0/0", "::/0", "ip as-path access-list", "") {
		return sb.String()
	}
	// ACL lines are ordered: the final permit must stay last. Renumbering
	// the ACL from k+10 frees sequence numbers 1..k in front of it for the
	// k new deny lines (their order among the denies does not matter);
	// removed lines go by content; a last renumbering restores 10, 20, ...
	// as a freshly loaded file has. The ACL never goes missing.
	acl := func(kw, mode, name, seqKw string, old, neu []netip.Prefix, line func(p netip.Prefix) [2]string) {
		rem, add := setDiff(old, neu)
		if len(rem)+len(add) == 0 {
			return
		}
		k := 2 * len(add)
		fmt.Fprintf(&sb, "%s access-list resequence %s %d 10\n", kw, name, k+10)
		fmt.Fprintf(&sb, "%s access-list %s%s\n", kw, mode, name)
		for i, p := range add {
			l := line(p)
			fmt.Fprintf(&sb, " %s%d %s\n %s%d %s\n", seqKw, 2*i+1, l[0], seqKw, 2*i+2, l[1])
		}
		for _, p := range rem {
			l := line(p)
			fmt.Fprintf(&sb, " no %s\n no %s\n", l[0], l[1])
		}
		sb.WriteString("exit\n")
		fmt.Fprintf(&sb, "%s access-list resequence %s 10 10\n", kw, name)
	}
	acl("ip", "extended ", d.n.ACLV4, "", d.a.cov4, d.b.cov4, func(p netip.Prefix) [2]string {
		w, _ := mask4(p, true)
		return [2]string{fmt.Sprintf("deny ip %s %s any", p.Addr(), w), fmt.Sprintf("deny ip any %s %s", p.Addr(), w)}
	})
	acl("ipv6", "", d.n.ACLV6, "sequence ", d.a.cov6, d.b.cov6, func(p netip.Prefix) [2]string {
		return [2]string{fmt.Sprintf("deny ipv6 %s any", p), fmt.Sprintf("deny ipv6 any %s", p)}
	})
	sb.WriteString("end\n")
	return sb.String()
}

func (d delta) frr() string {
	var sb strings.Builder
	d.ciscoStyle(&sb, "! apply with: vtysh -f FILE (or paste after \"configure terminal\")\n", "any", "any", "bgp as-path access-list", "exit\n")
	return sb.String()
}

// junosMatch is a route-filter-list entry's match type as rendered.
func junosMatch(r prefixset.Range) string {
	switch {
	case r.Exact():
		return "exact"
	case r.Ge == r.Prefix.Bits():
		return fmt.Sprintf("upto /%d", r.Le)
	default:
		return fmt.Sprintf("prefix-length-range /%d-/%d", r.Ge, r.Le)
	}
}

// emptiness reports a list that became empty or non-empty: its term or
// entry appears or disappears, which the full file handles.
func emptiness(lists ...struct {
	name string
	a, b int
}) string {
	for _, l := range lists {
		if (l.a == 0) != (l.b == 0) {
			state := "became empty"
			if l.a == 0 {
				state = "was empty"
			}
			return fmt.Sprintf("list %s %s, which adds or removes a policy term: load the full file", l.name, state)
		}
	}
	return ""
}

type listSize = struct {
	name string
	a, b int
}

func (d delta) junos() (string, string) {
	if why := emptiness(
		listSize{d.n.PrefixV4, len(d.a.v4), len(d.b.v4)}, listSize{d.n.PrefixV6, len(d.a.v6), len(d.b.v6)},
		listSize{d.n.ASPath, len(d.a.asns), len(d.b.asns)},
		listSize{d.n.ACLV4, len(d.a.cov4), len(d.b.cov4)}, listSize{d.n.ACLV6, len(d.a.cov6), len(d.b.cov6)},
	); why != "" {
		return "", why
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n", d.summary())
	if !d.changed() {
		sb.WriteString("# nothing changed\n")
		return sb.String(), ""
	}
	sb.WriteString("# load with: load set terminal (or load set FILE), then commit\n")
	rf := func(name string, a, b []prefixset.Range) {
		rem, add := setDiff(a, b)
		for _, r := range rem {
			fmt.Fprintf(&sb, "delete policy-options route-filter-list %s %s %s\n", name, r.Prefix, junosMatch(r))
		}
		for _, r := range add {
			fmt.Fprintf(&sb, "set policy-options route-filter-list %s %s %s\n", name, r.Prefix, junosMatch(r))
		}
	}
	rf(d.n.PrefixV4, d.a.v4, d.b.v4)
	rf(d.n.PrefixV6, d.a.v6, d.b.v6)
	ra, aa := setDiff(d.a.asns, d.b.asns)
	for _, a := range ra {
		fmt.Fprintf(&sb, "delete policy-options as-path-group %s as-path AS%d\n", d.n.ASPath, a)
	}
	for _, a := range aa {
		fmt.Fprintf(&sb, "set policy-options as-path-group %s as-path AS%d \".* %d\"\n", d.n.ASPath, a, a)
	}
	pl := func(name string, a, b []netip.Prefix) {
		rem, add := setDiff(a, b)
		for _, p := range rem {
			fmt.Fprintf(&sb, "delete policy-options prefix-list %s %s\n", name, p)
		}
		for _, p := range add {
			fmt.Fprintf(&sb, "set policy-options prefix-list %s %s\n", name, p)
		}
	}
	pl(d.n.ACLV4, d.a.cov4, d.b.cov4)
	pl(d.n.ACLV6, d.a.cov6, d.b.cov6)
	return sb.String(), ""
}

func srosEntry(r prefixset.Range) string {
	if r.Exact() {
		return fmt.Sprintf("prefix %s exact", r.Prefix)
	}
	return fmt.Sprintf("prefix %s prefix-length-range %d-%d", r.Prefix, r.Ge, r.Le)
}

func (d delta) sros() (string, string) {
	if why := emptiness(listSize{d.n.ASPath, len(d.a.asns), len(d.b.asns)}); why != "" {
		return "", why
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n", d.summary())
	if !d.changed() {
		sb.WriteString("# nothing changed\n")
		return sb.String(), ""
	}
	sb.WriteString("exit all\nconfigure router policy-options\nbegin\n")
	pl := func(name string, a, b []prefixset.Range) {
		rem, add := setDiff(a, b)
		if len(rem)+len(add) == 0 {
			return
		}
		fmt.Fprintf(&sb, "prefix-list %q\n", name)
		for _, r := range add {
			fmt.Fprintf(&sb, "    %s\n", srosEntry(r))
		}
		for _, r := range rem {
			fmt.Fprintf(&sb, "    no %s\n", srosEntry(r))
		}
		sb.WriteString("exit\n")
	}
	pl(d.n.PrefixV4, d.a.v4, d.b.v4)
	pl(d.n.PrefixV6, d.a.v6, d.b.v6)
	// as-path-group entries are numbered by position: rewrite them, and
	// remove the numbers no longer used (inside begin/commit: atomic).
	if ra, aa := setDiff(d.a.asns, d.b.asns); len(ra)+len(aa) > 0 {
		fmt.Fprintf(&sb, "as-path-group %q\n", d.n.ASPath)
		for i, a := range d.b.asns {
			fmt.Fprintf(&sb, "    entry %d expression \".* %d\"\n", i+1, a)
		}
		for i := len(d.b.asns); i < len(d.a.asns); i++ {
			fmt.Fprintf(&sb, "    no entry %d\n", i+1)
		}
		sb.WriteString("exit\n")
	}
	sb.WriteString("commit\nexit all\n")
	ml := func(kind, name string, a, b []netip.Prefix) {
		rem, add := setDiff(a, b)
		if len(rem)+len(add) == 0 {
			return
		}
		fmt.Fprintf(&sb, "configure filter match-list %s %q\n", kind, name)
		for _, p := range add {
			fmt.Fprintf(&sb, "    prefix %s\n", p)
		}
		for _, p := range rem {
			fmt.Fprintf(&sb, "    no prefix %s\n", p)
		}
		sb.WriteString("exit all\n")
	}
	ml("ip-prefix-list", d.n.ACLV4, d.a.cov4, d.b.cov4)
	ml("ipv6-prefix-list", d.n.ACLV6, d.a.cov6, d.b.cov6)
	return sb.String(), ""
}

func mikrotikRule(r prefixset.Range) string {
	return fmt.Sprintf("if (dst in %s && dst-len in %d-%d) { reject; }", r.Prefix, r.Ge, r.Le)
}

func (d delta) mikrotik() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n", d.summary())
	if !d.changed() {
		sb.WriteString("# nothing changed\n")
		return sb.String()
	}
	sb.WriteString("# load with: /import file-name=FILE\n")
	chain := func(name string, a, b []prefixset.Range) {
		rem, add := setDiff(a, b)
		if len(rem)+len(add) == 0 {
			return
		}
		sb.WriteString("/routing filter rule\n")
		for _, r := range add {
			// New rules go before the chain's final "return;".
			fmt.Fprintf(&sb, "add chain=%q rule=%q place-before=[find where chain=%q rule=\"return;\"]\n", name, mikrotikRule(r), name)
		}
		for _, r := range rem {
			fmt.Fprintf(&sb, "remove [find where chain=%q rule=%q]\n", name, mikrotikRule(r))
		}
	}
	chain(d.n.PrefixV4, d.a.v4, d.b.v4)
	chain(d.n.PrefixV6, d.a.v6, d.b.v6)
	if ra, aa := setDiff(d.a.asns, d.b.asns); len(ra)+len(aa) > 0 {
		sb.WriteString("/routing filter num-list\n")
		for _, a := range aa {
			fmt.Fprintf(&sb, "add list=%q range=%d\n", d.n.ASPath, a)
		}
		for _, a := range ra {
			fmt.Fprintf(&sb, "remove [find where list=%q range=\"%d\"]\n", d.n.ASPath, a)
		}
		if len(d.a.asns) == 0 {
			fmt.Fprintf(&sb, "/routing filter rule\nadd chain=%q rule=\"if (bgp-as-path [[:%s:]]\\$) { reject; }\" place-before=[find where chain=%q rule=\"accept;\"]\n",
				d.n.Policy, d.n.ASPath, d.n.Policy)
		}
		if len(d.b.asns) == 0 {
			fmt.Fprintf(&sb, "/routing filter rule\nremove [find where chain=%q rule=\"if (bgp-as-path [[:%s:]]\\$) { reject; }\"]\n", d.n.Policy, d.n.ASPath)
		}
	}
	al := func(menu, name string, a, b []netip.Prefix) {
		rem, add := setDiff(a, b)
		if len(rem)+len(add) == 0 {
			return
		}
		fmt.Fprintf(&sb, "%s\n", menu)
		for _, p := range rem {
			fmt.Fprintf(&sb, "remove [find where list=%q address=%q]\n", name, hostOrPrefix(p))
		}
		for _, p := range add {
			fmt.Fprintf(&sb, "add list=%q address=%s\n", name, hostOrPrefix(p))
		}
	}
	al("/ip firewall address-list", d.n.ACLV4, d.a.cov4, d.b.cov4)
	al("/ipv6 firewall address-list", d.n.ACLV6, d.a.cov6, d.b.cov6)
	return sb.String()
}

func (d delta) nftables() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n", d.summary())
	if !d.changed() {
		sb.WriteString("# nothing changed\n")
		return sb.String()
	}
	sb.WriteString("# load with: nft -f FILE (one transaction: deletions first, so merged or split ranges never overlap)\n")
	elems := func(ps []netip.Prefix) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = p.String()
		}
		return strings.Join(s, ", ")
	}
	r4, a4 := setDiff(d.a.cov4, d.b.cov4)
	r6, a6 := setDiff(d.a.cov6, d.b.cov6)
	if len(r4) > 0 {
		fmt.Fprintf(&sb, "delete element inet asfence %s { %s }\n", d.n.ACLV4, elems(r4))
	}
	if len(r6) > 0 {
		fmt.Fprintf(&sb, "delete element inet asfence %s { %s }\n", d.n.ACLV6, elems(r6))
	}
	if len(a4) > 0 {
		fmt.Fprintf(&sb, "add element inet asfence %s { %s }\n", d.n.ACLV4, elems(a4))
	}
	if len(a6) > 0 {
		fmt.Fprintf(&sb, "add element inet asfence %s { %s }\n", d.n.ACLV6, elems(a6))
	}
	return sb.String()
}
