package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
)

// Page sizes.
const (
	runsPerPage    = 50
	recentRuns     = 10
	changesPerPage = 100
	// changesPreview rows of each list are shown on the run page itself.
	changesPreview = 20
	// asnsPreview ASNs of each list are shown on the run page itself.
	asnsPreview = 50
	// diffLinesPreview lines of each vendor file's diff on the run page.
	diffLinesPreview = 60
	diffLinesPerPage = 1000
)

// outcomes are the run outcomes a filter may ask for.
var outcomes = []string{store.Running, store.Applied, store.Held, store.Unchanged, store.Failed}

type overviewPage struct {
	Status     *api.Status
	Runs       []*store.Run
	RunsError  string
	Peers      []bgp.PeerStatus
	PeersError string
	// BMP is what GET /api/v1/bmp answers (nil: a backend without a BMP
	// receiver or live watch).
	BMP      *api.BMP
	BMPError string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := c.b.Status(ctx)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	p := overviewPage{Status: st}
	if p.Runs, err = c.b.Runs(ctx, store.ListOptions{Limit: recentRuns}); err != nil {
		p.RunsError = err.Error()
	}
	if p.Peers, err = c.b.Peers(ctx); err != nil {
		p.PeersError = err.Error()
	}
	if b, ok := c.b.(api.BMPBackend); ok {
		if p.BMP, err = b.BMP(ctx); err != nil {
			p.BMPError = err.Error()
		}
	}
	c.render(w, r, http.StatusOK, "overview", "Overview", p)
}

// runFilter is the Runs page's filter form.
type runFilter struct {
	Outcome, Trigger, From, To string
	Before                     uint64
}

var triggerRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

func parseRunFilter(q url.Values) (runFilter, store.ListOptions, error) {
	f := runFilter{Outcome: q.Get("outcome"), Trigger: q.Get("trigger"), From: q.Get("from"), To: q.Get("to")}
	o := store.ListOptions{Limit: runsPerPage + 1, Outcome: f.Outcome, Trigger: f.Trigger}
	if f.Outcome != "" && !contains(outcomes, f.Outcome) {
		return f, o, fmt.Errorf("outcome %q: want one of %s", f.Outcome, strings.Join(outcomes, ", "))
	}
	if f.Trigger != "" && !triggerRE.MatchString(f.Trigger) {
		return f, o, fmt.Errorf("trigger %q: want a word such as schedule, api, startup", f.Trigger)
	}
	day := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return t, fmt.Errorf("%s %q: want a date YYYY-MM-DD (UTC)", name, v)
		}
		return t, nil
	}
	var err error
	if o.Since, err = day("from", f.From); err != nil {
		return f, o, err
	}
	until, err := day("to", f.To)
	if err != nil {
		return f, o, err
	}
	if !until.IsZero() {
		o.Until = until.AddDate(0, 0, 1) // the whole day
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return f, o, fmt.Errorf("before %q: want a run id", v)
		}
		f.Before, o.Before = n, n
	}
	return f, o, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// query is the filter as URL parameters (before: the page cursor).
func (f runFilter) query(before uint64) string {
	v := url.Values{}
	for k, x := range map[string]string{"outcome": f.Outcome, "trigger": f.Trigger, "from": f.From, "to": f.To} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if before > 0 {
		v.Set("before", strconv.FormatUint(before, 10))
	}
	if len(v) == 0 {
		return "/runs"
	}
	return "/runs?" + v.Encode()
}

type runsPage struct {
	Filter   runFilter
	Outcomes []string
	Runs     []*store.Run
	// Older is the link to the next page ("" on the last); First the link
	// to the first page when this is not it.
	Older, First string
}

func (c *Console) runs(w http.ResponseWriter, r *http.Request) {
	f, o, err := parseRunFilter(r.URL.Query())
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	rs, err := c.b.Runs(r.Context(), o)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	p := runsPage{Filter: f, Outcomes: outcomes, Runs: rs}
	if len(rs) > runsPerPage {
		p.Runs = rs[:runsPerPage]
		p.Older = f.query(p.Runs[runsPerPage-1].ID)
	}
	if f.Before > 0 {
		p.First = f.query(0)
	}
	c.render(w, r, http.StatusOK, "runs", "Runs", p)
}

// targetChanges is one target's part of the run page.
type targetChanges struct {
	Diff                   store.TargetDiff
	Added, Removed         *Changes
	AddedASNs, RemovedASNs *Changes
}

type fileDiff struct {
	File  string
	Lines []string
	Total int
	More  bool
}

type runPage struct {
	Run     *store.Run
	Held    bool
	Targets []targetChanges
	Diffs   []fileDiff
	// DiffsError says why the diffs could not be read.
	DiffsError string
}

// waiting reports whether a run is held and not decided.
func waiting(r *store.Run) bool { return r.Outcome == store.Held && r.Decision == nil }

func (c *Console) run(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	run, err := c.b.RunSummary(ctx, id)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	p := runPage{Run: run, Held: waiting(run)}
	for _, td := range run.Diff.Targets {
		tc := targetChanges{Diff: td}
		for _, x := range []struct {
			kind  string
			n     int
			limit int
			dst   **Changes
		}{
			{Added, td.Added, changesPreview, &tc.Added},
			{Removed, td.Removed, changesPreview, &tc.Removed},
			{AddedASNs, td.AddedASNs, asnsPreview, &tc.AddedASNs},
			{RemovedASNs, td.RemovedASNs, asnsPreview, &tc.RemovedASNs},
		} {
			if x.n == 0 {
				continue
			}
			ch, err := c.b.RunChanges(ctx, id, ChangeQuery{Target: td.Target, Kind: x.kind, Limit: x.limit})
			if err != nil {
				c.backendError(w, r, err)
				return
			}
			*x.dst = ch
		}
		p.Targets = append(p.Targets, tc)
	}
	files, err := c.b.RunDiffFiles(ctx, id)
	if err != nil {
		p.DiffsError = err.Error()
	}
	for _, f := range files {
		lines, total, err := c.b.RunDiffLines(ctx, id, f.File, 0, diffLinesPreview)
		if err != nil {
			p.DiffsError = err.Error()
			break
		}
		p.Diffs = append(p.Diffs, fileDiff{File: f.File, Total: total, Lines: lines, More: total > len(lines)})
	}
	c.render(w, r, http.StatusOK, "run", fmt.Sprintf("Run %d", id), p)
}

// pager describes a page of a longer list.
type pager struct {
	Offset, Limit, Total int
	// Prev and Next are links ("" at either end).
	Prev, Next string
}

func newPager(offset, limit, total int, link func(offset int) string) pager {
	p := pager{Offset: offset, Limit: limit, Total: total}
	if offset > 0 {
		p.Prev = link(max(offset-limit, 0))
	}
	if offset+limit < total {
		p.Next = link(offset + limit)
	}
	return p
}

// First and Last are the 1-based positions of the page's rows.
func (p pager) First() int { return min(p.Offset+1, p.Total) }
func (p pager) Last() int  { return min(p.Offset+p.Limit, p.Total) }

type changesPage struct {
	Run     *store.Run
	Target  string
	Kind    string
	Changes *Changes
	Pager   pager
	// Kinds links the other lists of the same target.
	Kinds []kindLink
}

type kindLink struct {
	Kind, Label, Href string
	Count             int
	Current           bool
}

func changesLink(id uint64, target, kind string, offset int) string {
	v := url.Values{"target": {target}, "kind": {kind}}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	return fmt.Sprintf("/runs/%d/changes?%s", id, v.Encode())
}

func (c *Console) changes(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	target, kind := q.Get("target"), q.Get("kind")
	if !contains([]string{Added, Removed, AddedASNs, RemovedASNs}, kind) {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("kind %q: want added, removed, added-asns or removed-asns", kind))
		return
	}
	offset, err := intParam(r, "offset", 0, 1<<30)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	run, err := c.b.RunSummary(ctx, id)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	var td *store.TargetDiff
	for i := range run.Diff.Targets {
		if run.Diff.Targets[i].Target == target {
			td = &run.Diff.Targets[i]
		}
	}
	if td == nil {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("run %d changed no target %q", id, target))
		return
	}
	ch, err := c.b.RunChanges(ctx, id, ChangeQuery{Target: target, Kind: kind, Offset: offset, Limit: changesPerPage})
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	p := changesPage{Run: run, Target: target, Kind: kind, Changes: ch,
		Pager: newPager(offset, changesPerPage, ch.Total, func(o int) string { return changesLink(id, target, kind, o) })}
	for _, k := range []kindLink{{Kind: Added, Label: "prefixes added", Count: td.Added}, {Kind: Removed, Label: "prefixes removed", Count: td.Removed},
		{Kind: AddedASNs, Label: "ASNs added", Count: td.AddedASNs}, {Kind: RemovedASNs, Label: "ASNs removed", Count: td.RemovedASNs}} {
		k.Href, k.Current = changesLink(id, target, k.Kind, 0), k.Kind == kind
		p.Kinds = append(p.Kinds, k)
	}
	c.render(w, r, http.StatusOK, "changes", fmt.Sprintf("Run %d: %s %s", id, target, kind), p)
}

type diffPage struct {
	Run   *store.Run
	File  string
	Lines []string
	Pager pager
}

func (c *Console) diff(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	file := r.URL.Query().Get("file")
	offset, err := intParam(r, "offset", 0, 1<<30)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	run, err := c.b.RunSummary(ctx, id)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	lines, total, err := c.b.RunDiffLines(ctx, id, file, offset, diffLinesPerPage)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	p := diffPage{Run: run, File: file, Lines: lines, Pager: newPager(offset, diffLinesPerPage, total, func(o int) string {
		return fmt.Sprintf("/runs/%d/diff?%s", id, url.Values{"file": {file}, "offset": {strconv.Itoa(o)}}.Encode())
	})}
	c.render(w, r, http.StatusOK, "diff", fmt.Sprintf("Run %d: diff of %s", id, file), p)
}

// by names who acted, as the API does: an optional name, and where from.
func by(r *http.Request) (string, error) {
	name := strings.TrimSpace(r.PostFormValue("by"))
	if len(name) > 200 || strings.ContainsAny(name, "\r\n") {
		return "", errors.New("your name: at most 200 characters on one line")
	}
	if name == "" {
		return "console " + r.RemoteAddr, nil
	}
	return name + " (console " + r.RemoteAddr + ")", nil
}

func (c *Console) trigger(w http.ResponseWriter, r *http.Request) {
	who, err := by(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	run, err := c.b.Trigger(r.Context(), who)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	c.opts.Log.WithField("run", run.ID).WithField("by", who).Info("console: run triggered")
	http.Redirect(w, r, fmt.Sprintf("/runs/%d?done=triggered", run.ID), http.StatusSeeOther)
}

func (c *Console) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := runID(r)
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, err)
			return
		}
		who, err := by(r)
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, err)
			return
		}
		done := "approved"
		if approve {
			_, err = c.b.Approve(r.Context(), id, who)
		} else {
			done = "rejected"
			_, err = c.b.Reject(r.Context(), id, who)
		}
		if err != nil {
			c.backendError(w, r, err)
			return
		}
		c.opts.Log.WithField("run", id).WithField("by", who).Info("console: held change " + done)
		http.Redirect(w, r, fmt.Sprintf("/runs/%d?done=%s", id, done), http.StatusSeeOther)
	}
}
