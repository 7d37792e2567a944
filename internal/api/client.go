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

	"github.com/asfence/asfence/internal/store"
)

// Client talks to a running daemon's API (the CLI's history, show,
// approve, reject and peers commands).
type Client struct {
	// Base is the API root, e.g. http://127.0.0.1:9179.
	Base  string
	Token string
	HTTP  *http.Client
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

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &UnreachableError{Base: c.Base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("api %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api %s %s: bad answer: %w", method, path, err)
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

// Run reads one run with its diff.
func (c *Client) Run(ctx context.Context, id uint64) (*store.Run, *store.Detail, error) {
	var out RunDetail
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", id), nil, &out); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil, nil, fmt.Errorf("%s: %w", se.Message, store.ErrNotFound)
		}
		return nil, nil, err
	}
	return out.Run, out.Detail, nil
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
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out struct {
		Peers []Peer `json:"peers"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/peers", nil, &out); err != nil {
		return nil, err
	}
	return out.Peers, nil
}
