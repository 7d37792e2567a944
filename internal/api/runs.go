package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/store"
)

// RunFormat is the version of the run detail answers: 2 since a run's
// change is paged (GET /api/v1/runs/{id} had the whole change under
// "detail" in format 1, which had no "format" field).
const RunFormat = 2

// Prefix pages: the default and the largest page.
const (
	DefaultPrefixLimit = 1000
	MaxPrefixLimit     = 10000
)

// RunSummary is GET /api/v1/runs/{id}: the run's record and its change
// counted per target, with links to the pages of prefixes and to the
// vendor-file diffs.
type RunSummary struct {
	Format int        `json:"format"`
	Run    *store.Run `json:"run"`
	// Change is null when the run recorded none (a failed run).
	Change *ChangeSummary `json:"change"`
}

// ChangeSummary is a run's change without its lists.
type ChangeSummary struct {
	Targets []TargetChange `json:"targets"`
	Diffs   []DiffLink     `json:"diffs"`
}

// TargetChange is one target's change: counts, the ASNs added and
// removed, and the first page of each prefix list.
type TargetChange struct {
	store.ChangeTarget
	AddedHref   string `json:"added_href"`
	RemovedHref string `json:"removed_href"`
}

// DiffLink is one vendor file's recorded diff.
type DiffLink struct {
	store.DiffFile
	Href string `json:"href"`
}

// PrefixPage is GET /api/v1/runs/{id}/prefixes: a page of one target's
// added or removed prefixes, with their evidence.
type PrefixPage struct {
	Format int    `json:"format"`
	Run    uint64 `json:"run"`
	Target string `json:"target"`
	Change string `json:"change"`
	Offset int    `json:"offset"`
	// Limit is the page size in force (a larger one asked for is capped at
	// MaxPrefixLimit).
	Limit int `json:"limit"`
	// Total counts the whole list.
	Total int `json:"total"`
	// Next is the next page ("" on the last).
	Next     string       `json:"next,omitempty"`
	Prefixes []asn.Prefix `json:"prefixes"`
}

// PrefixesHref is the API path of a page of a run's prefixes.
func PrefixesHref(id uint64, target, change string, offset, limit int) string {
	v := url.Values{"target": {target}, "change": {change}}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return fmt.Sprintf("/api/v1/runs/%d/prefixes?%s", id, v.Encode())
}

// DiffHref is the API path of a vendor file's recorded diff.
func DiffHref(id uint64, file string) string {
	return fmt.Sprintf("/api/v1/runs/%d/diffs/%s", id, url.PathEscape(file))
}

func summaryOf(id uint64, s *store.ChangeSummary) *ChangeSummary {
	if s == nil {
		return nil
	}
	out := &ChangeSummary{Targets: []TargetChange{}, Diffs: []DiffLink{}}
	for _, t := range s.Targets {
		out.Targets = append(out.Targets, TargetChange{ChangeTarget: t,
			AddedHref: PrefixesHref(id, t.Target, store.ChangeAdded, 0, 0), RemovedHref: PrefixesHref(id, t.Target, store.ChangeRemoved, 0, 0)})
	}
	for _, f := range s.Diffs {
		out.Diffs = append(out.Diffs, DiffLink{DiffFile: f, Href: DiffHref(id, f.File)})
	}
	return out
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	id, ok := runID(w, r)
	if !ok {
		return
	}
	run, sum, err := s.b.RunChange(id)
	if err != nil {
		backendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RunSummary{Format: RunFormat, Run: run, Change: summaryOf(id, sum)})
}

// intParam reads a non-negative integer query parameter.
func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want a number, 0 or more", name, v)
	}
	return n, nil
}

// abort ends an answer whose status is already sent: the connection is
// cut, so that no client takes a partial list for a whole one
// (http.ErrAbortHandler is net/http's way to do so).
func abort() { panic(http.ErrAbortHandler) }

func (s *Server) runPrefixes(w http.ResponseWriter, r *http.Request) {
	id, ok := runID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if bad := unknownParams(q, "target", "change", "offset", "limit"); bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	pq := store.PrefixQuery{Target: q.Get("target"), Change: q.Get("change")}
	if pq.Target == "" {
		writeError(w, http.StatusBadRequest, "target: required (the targets are in GET /api/v1/runs/{id})")
		return
	}
	if pq.Change != store.ChangeAdded && pq.Change != store.ChangeRemoved {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("change %q: want added or removed", pq.Change))
		return
	}
	var err error
	if pq.Offset, err = intParam(q, "offset", 0); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if pq.Limit, err = intParam(q, "limit", DefaultPrefixLimit); err != nil || pq.Limit == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1-%d", q.Get("limit"), MaxPrefixLimit))
		return
	}
	pq.Limit = min(pq.Limit, MaxPrefixLimit)
	_, sum, err := s.b.RunChange(id)
	if err != nil {
		backendError(w, err)
		return
	}
	var tc *store.ChangeTarget
	if sum != nil {
		tc = sum.Target(pq.Target)
	}
	if tc == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %d changed no target %q", id, pq.Target))
		return
	}
	page := PrefixPage{Format: RunFormat, Run: id, Target: pq.Target, Change: pq.Change, Offset: pq.Offset, Limit: pq.Limit, Total: tc.Added}
	if pq.Change == store.ChangeRemoved {
		page.Total = tc.Removed
	}
	if pq.Offset+pq.Limit < page.Total {
		page.Next = PrefixesHref(id, pq.Target, pq.Change, pq.Offset+pq.Limit, pq.Limit)
	}
	// The page is written as it is read, a chunk at a time: the head
	// (everything but the list), then each prefix.
	head, err := json.Marshal(page)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	head = bytes.TrimSuffix(head, []byte(`"prefixes":null}`))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	started, n := false, 0
	start := func() {
		if !started {
			started = true
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(head)
			_, _ = w.Write([]byte(`"prefixes":[`))
		}
	}
	var buf bytes.Buffer
	total, err := s.b.RunPrefixes(id, pq, func(ps []asn.Prefix) error {
		start()
		buf.Reset()
		enc := json.NewEncoder(&buf)
		for _, p := range ps {
			if n > 0 {
				buf.WriteByte(',')
			}
			n++
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
		_, err := w.Write(buf.Bytes())
		return err
	})
	switch {
	case err != nil && !started:
		backendError(w, err)
		return
	case err != nil:
		abort()
	case total != page.Total:
		// The run was rewritten between the two reads (very rare): the
		// head would not match the list.
		if !started {
			backendError(w, &store.ChangedError{RunID: id})
			return
		}
		abort()
	}
	start()
	_, _ = w.Write([]byte("]}\n"))
}

func (s *Server) runDiff(w http.ResponseWriter, r *http.Request) {
	id, ok := runID(w, r)
	if !ok {
		return
	}
	if bad := unknownParams(r.URL.Query()); bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	file := r.PathValue("file")
	_, sum, err := s.b.RunChange(id)
	if err != nil {
		backendError(w, err)
		return
	}
	var f *store.DiffFile
	if sum != nil {
		f = sum.File(file)
	}
	if f == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %d recorded no diff of %q", id, file))
		return
	}
	w.Header().Set("Content-Type", "text/x-diff; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(f.Bytes))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	started, sent := false, 0
	_, err = s.b.RunDiff(id, file, 0, -1, func(text string) error {
		if !started {
			started = true
			w.WriteHeader(http.StatusOK)
		}
		sent += len(text)
		_, err := w.Write([]byte(text))
		return err
	})
	switch {
	case err != nil && !started:
		w.Header().Del("Content-Length")
		backendError(w, err)
	case err != nil || sent != f.Bytes:
		abort()
	case !started:
		w.WriteHeader(http.StatusOK)
	}
}
