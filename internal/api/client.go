package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// Client talks to a running daemon's API (the CLI's history, show,
// approve, reject and peers commands).
type Client struct {
	// Base is the API root, e.g. http://127.0.0.1:9179.
	Base  string
	Token string
	HTTP  *http.Client
	// MaxAnswer bounds one JSON answer in bytes (0: DefaultMaxAnswer):
	// a larger one is a TooLargeError, never cut silently.
	MaxAnswer int64
}

// StatusError is an error answer of the API.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("api: %s (HTTP %d)", e.Message, e.Code)
}

// UnreachableError: nothing answered at Base (the daemon is not running).
type UnreachableError struct {
	Base string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("daemon API at %s is not reachable: %v", e.Base, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// BaseURL turns a listen address into the URL a client uses.
func BaseURL(listen string) string {
	if strings.HasPrefix(listen, "http://") || strings.HasPrefix(listen, "https://") {
		return strings.TrimRight(listen, "/")
	}
	return "http://" + listen
}

// DefaultMaxAnswer bounds one JSON answer the client reads (a page of
// prefixes is a few MB; the largest answers are paged).
const DefaultMaxAnswer = 64 << 20

// TooLargeError: an answer (or a whole read) is larger than the client
// takes at once.
type TooLargeError struct {
	What  string
	Size  int64
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.Size > 0 {
		return fmt.Sprintf("%s: %d bytes, more than this client reads at once (%d)", e.What, e.Size, e.Limit)
	}
	return fmt.Sprintf("%s: more than %d bytes, more than this client reads at once", e.What, e.Limit)
}

// TruncatedError: the daemon's answer ended before it was whole (the
// daemon stopped, or cut the answer because reading its store failed:
// see its log).
type TruncatedError struct {
	What string
	Read int64
	Err  error
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("%s: the answer was cut off after %d bytes (%v): the daemon stopped sending it, see its log", e.What, e.Read, e.Err)
}

func (e *TruncatedError) Unwrap() error { return e.Err }

func (c *Client) maxAnswer() int64 {
	if c.MaxAnswer > 0 {
		return c.MaxAnswer
	}
	return DefaultMaxAnswer
}

// send makes a request and returns a successful answer (status < 300);
// an error answer becomes a StatusError.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &UnreachableError{Base: c.Base, Err: err}
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

// countingReader counts what was read (to say where an answer broke).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	what := fmt.Sprintf("api %s %s", method, path)
	limit := c.maxAnswer()
	if resp.ContentLength > limit {
		return &TooLargeError{What: what, Size: resp.ContentLength, Limit: limit}
	}
	cr := &countingReader{r: resp.Body}
	// One byte more than the limit tells a complete answer of exactly the
	// limit from a larger one.
	data, err := io.ReadAll(io.LimitReader(cr, limit+1))
	if err != nil {
		return &TruncatedError{What: what, Read: cr.n, Err: err}
	}
	if int64(len(data)) > limit {
		return &TooLargeError{What: what, Limit: limit}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset >= int64(len(data)) { // the JSON ends early
			return &TruncatedError{What: what, Read: cr.n, Err: err}
		}
		return fmt.Errorf("%s: bad answer: %w", what, err)
	}
	return nil
}

// Status reads the daemon status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Runs lists runs, newest first.
func (c *Client) Runs(ctx context.Context, o store.ListOptions) ([]*store.Run, error) {
	v := url.Values{}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Before > 0 {
		v.Set("before", strconv.FormatUint(o.Before, 10))
	}
	if o.Outcome != "" {
		v.Set("outcome", o.Outcome)
	}
	path := "/api/v1/runs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out struct {
		Runs []*store.Run `json:"runs"`
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.Runs, nil
}

func notFound(err error) error {
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return fmt.Errorf("%s: %w", se.Message, store.ErrNotFound)
	}
	return err
}

// RunSummary reads one run with its change summary (counts, ASNs, the
// vendor files whose diffs were recorded).
func (c *Client) RunSummary(ctx context.Context, id uint64) (*RunSummary, error) {
	var out RunSummary
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", id), nil, &out); err != nil {
		return nil, notFound(err)
	}
	if out.Format != RunFormat || out.Run == nil {
		return nil, fmt.Errorf("api GET /api/v1/runs/%d: answer in format %d, this client reads format %d (a daemon of another version?)", id, out.Format, RunFormat)
	}
	return &out, nil
}

// PrefixPageSize is the page size RunPrefixes asks for.
const PrefixPageSize = 5000

// RunPrefixes pages through the prefixes q selects (q.Limit < 0: to the
// end of the list), calling fn with each page, and returns the length of
// the whole list.
func (c *Client) RunPrefixes(ctx context.Context, id uint64, q store.PrefixQuery, fn func([]asn.Prefix) error) (int, error) {
	offset := q.Offset
	for {
		n := PrefixPageSize
		if q.Limit >= 0 {
			n = min(n, q.Offset+q.Limit-offset)
		}
		var p PrefixPage
		path := PrefixesHref(id, q.Target, q.Change, offset, max(n, 1))
		if err := c.do(ctx, http.MethodGet, path, nil, &p); err != nil {
			return 0, notFound(err)
		}
		if p.Format != RunFormat || p.Offset != offset || len(p.Prefixes) > max(n, 1) {
			return 0, fmt.Errorf("api GET %s: an answer for offset %d with %d prefixes (format %d) does not fit the question", path, p.Offset, len(p.Prefixes), p.Format)
		}
		got := p.Prefixes[:min(n, len(p.Prefixes))]
		if len(got) > 0 {
			if err := fn(got); err != nil {
				return p.Total, err
			}
		}
		offset += len(got)
		stop := p.Total
		if q.Limit >= 0 {
			stop = min(stop, q.Offset+q.Limit)
		}
		if offset >= stop {
			return p.Total, nil
		}
		if len(got) == 0 {
			return p.Total, fmt.Errorf("api GET %s: the list ended at %d of %d prefixes", path, offset, p.Total)
		}
	}
}

// RunDiff copies a vendor file's recorded diff to w, as it arrives.
func (c *Client) RunDiff(ctx context.Context, id uint64, file string, w io.Writer) error {
	path := DiffHref(id, file)
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return notFound(err)
	}
	defer resp.Body.Close()
	cr := &countingReader{r: resp.Body}
	if _, err := io.Copy(w, cr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &TruncatedError{What: "api GET " + path, Read: cr.n, Err: err}
		}
		return fmt.Errorf("api GET %s: %w", path, err)
	}
	return nil
}

// RunDetail is a run's whole change and the diffs of the vendor files it
// wrote, as Client.Run reads them (the API serves them a page at a time).
type RunDetail struct {
	// Change has every target the run changed, with their prefixes and
	// evidence.
	Change policy.Change
	// OutputDiffs are the recorded diffs, in the API's order.
	OutputDiffs []store.OutputDiff
}

// Run reads one run with its whole change and diffs, paging through them:
// for small runs (a change of more than store.MaxWholeDetail prefixes is a
// TooLargeError; page with RunSummary and RunPrefixes). The detail is nil
// when the run recorded no change (a failed run).
func (c *Client) Run(ctx context.Context, id uint64) (*store.Run, *RunDetail, error) {
	sum, err := c.RunSummary(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if sum.Change == nil {
		return sum.Run, nil, nil
	}
	n := 0
	for _, t := range sum.Change.Targets {
		n += t.Added + t.Removed
	}
	if n > store.MaxWholeDetail {
		return nil, nil, &store.TooLargeError{What: fmt.Sprintf("run %d changed prefixes", id), Size: n, Limit: store.MaxWholeDetail}
	}
	d := &RunDetail{Change: policy.Change{Targets: []policy.TargetChange{}}}
	for _, t := range sum.Change.Targets {
		tc := policy.TargetChange{Target: t.Target, Before: t.Before, After: t.After, AddedASNs: t.AddedASNs, RemovedASNs: t.RemovedASNs}
		for _, l := range []struct {
			kind string
			n    int
			dst  *[]asn.Prefix
		}{{store.ChangeAdded, t.Added, &tc.Added}, {store.ChangeRemoved, t.Removed, &tc.Removed}} {
			if l.n == 0 {
				continue
			}
			if _, err := c.RunPrefixes(ctx, id, store.PrefixQuery{Target: t.Target, Change: l.kind, Limit: -1}, func(ps []asn.Prefix) error {
				*l.dst = append(*l.dst, ps...)
				return nil
			}); err != nil {
				return nil, nil, err
			}
		}
		d.Change.Targets = append(d.Change.Targets, tc)
	}
	for _, f := range sum.Change.Diffs {
		var b strings.Builder
		if err := c.RunDiff(ctx, id, f.File, &b); err != nil {
			return nil, nil, err
		}
		d.OutputDiffs = append(d.OutputDiffs, store.OutputDiff{File: f.File, Diff: b.String()})
	}
	return sum.Run, d, nil
}

// Trigger starts a run.
func (c *Client) Trigger(ctx context.Context, by string) (*store.Run, error) {
	return c.post(ctx, "/api/v1/runs", by)
}

// Approve applies a held run.
func (c *Client) Approve(ctx context.Context, id uint64, by string) (*store.Run, error) {
	return c.post(ctx, fmt.Sprintf("/api/v1/runs/%d/approve", id), by)
}

// Reject rejects a held run.
func (c *Client) Reject(ctx context.Context, id uint64, by string) (*store.Run, error) {
	return c.post(ctx, fmt.Sprintf("/api/v1/runs/%d/reject", id), by)
}

func (c *Client) post(ctx context.Context, path, by string) (*store.Run, error) {
	var body any
	if by != "" {
		body = decision{By: by}
	}
	var out struct {
		Run *store.Run `json:"run"`
	}
	if err := c.do(ctx, http.MethodPost, path, body, &out); err != nil {
		return nil, err
	}
	return out.Run, nil
}

// Peers lists the BGP neighbors.
func (c *Client) Peers(ctx context.Context) ([]bgp.PeerStatus, error) {
	var out struct {
		Peers []bgp.PeerStatus `json:"peers"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/peers", nil, &out); err != nil {
		return nil, err
	}
	return out.Peers, nil
}
