// Package fetch makes the HTTP GETs of the registry clients: every request
// carries a context, a timeout and a User-Agent naming asfence, and every
// answer is size-bounded, so that a dead, slow or garbage-speaking registry
// yields a clear error instead of a hang or an out-of-memory crash.
package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// UserAgent identifies asfence to registries (several ask clients to).
const UserAgent = "asfence (+https://github.com/asfence/asfence)"

// Defaults.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultMaxBytes  = 16 << 20
	defaultRedirects = 5
)

// BaseURL checks a registry API's base URL (http or https) and returns it
// without a trailing slash, ready for paths to be appended.
func BaseURL(u string) (string, error) {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return "", fmt.Errorf("base URL %q is not http(s)", u)
	}
	return strings.TrimSuffix(u, "/"), nil
}

// ErrNotFound is returned for HTTP 404. Clients of APIs where 404 means "no
// such object" turn it into an empty answer; the others report it.
var ErrNotFound = errors.New("not found (HTTP 404)")

// StatusError is a non-2xx answer other than 404.
type StatusError struct {
	Code   int
	Status string
	// RetryAfter is the Retry-After header, if any (429, 503).
	RetryAfter string
	// Detail is what the server said about the error (a JSON error title
	// or the start of the body), if anything useful.
	Detail string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	if e.Code == http.StatusTooManyRequests {
		b.WriteString("rate limited (HTTP 429)")
	} else {
		fmt.Fprintf(&b, "HTTP %s", e.Status)
	}
	if e.RetryAfter != "" {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

// Client fetches registry answers. The zero value is usable.
type Client struct {
	// HTTP is the transport; nil means a client built from the fields below.
	HTTP *http.Client
	// Timeout bounds one request (connect, headers and body); 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds one answer body; 0 means DefaultMaxBytes.
	MaxBytes int64
	// UserAgent overrides the default User-Agent.
	UserAgent string
	// Header is added to every request (e.g. an API key). Go's client drops
	// Authorization when a redirect leaves the host, so a key does not leak.
	Header http.Header
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// Limit returns the answer size bound.
func (c *Client) Limit() int64 {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return DefaultMaxBytes
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= defaultRedirects {
			return fmt.Errorf("stopped after %d redirects", defaultRedirects)
		}
		return nil
	}}
}

// Get fetches url and returns the body of a 2xx answer. accept is sent as
// the Accept header. The error says what went wrong without the URL (the
// caller names the registry and what it asked); a 404 is ErrNotFound.
func (c *Client) Get(ctx context.Context, url, accept string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	resp, err := c.open(ctx, url, http.Header{"Accept": {accept}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := c.Limit()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("answer of %d bytes is larger than the %d-byte limit", resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.explain(ctx, fmt.Errorf("reading answer: %w", err))
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("answer is larger than the %d-byte limit", limit)
	}
	return body, nil
}

// open sends the request, with the client's headers and extra (empty
// values left out), and returns a 2xx response, or a 304 to a request with
// If-Modified-Since (whose body the caller closes); other answers become
// errors.
func (c *Client) open(ctx context.Context, url string, extra http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	ua := c.UserAgent
	if ua == "" {
		ua = UserAgent
	}
	req.Header.Set("User-Agent", ua)
	for k, v := range extra {
		if len(v) > 0 && v[0] != "" {
			req.Header[k] = v
		}
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, c.explain(ctx, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, ErrNotFound
	}
	if resp.StatusCode == http.StatusNotModified && req.Header.Get("If-Modified-Since") != "" {
		return resp, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Read a little of the body: registries explain errors there.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &StatusError{Code: resp.StatusCode, Status: resp.Status,
			RetryAfter: resp.Header.Get("Retry-After"), Detail: errorDetail(head)}
	}
	return resp, nil
}

// explain turns a timeout into words; other errors pass through.
func (c *Client) explain(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if d, ok := ctx.Deadline(); ok && time.Until(d) <= 0 {
			return fmt.Errorf("no complete answer within the time limit (%s or the caller's deadline): %w", c.timeout(), context.DeadlineExceeded)
		}
	}
	return err
}

// errorDetail extracts a human message from an error body: RDAP's
// title/description, RIPEstat's messages, PeeringDB's meta.error, or the
// first line of a text body.
func errorDetail(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var j struct {
		Title       string          `json:"title"`
		Description json.RawMessage `json:"description"`
		Meta        struct {
			Error string `json:"error"`
		} `json:"meta"`
		Messages [][]string `json:"messages"`
		Detail   string     `json:"detail"`
		Message  string     `json:"message"`
	}
	if json.Unmarshal(body, &j) == nil {
		var parts []string
		if j.Title != "" {
			parts = append(parts, j.Title)
		}
		var desc []string
		if json.Unmarshal(j.Description, &desc) == nil {
			parts = append(parts, desc...)
		}
		if j.Meta.Error != "" {
			parts = append(parts, j.Meta.Error)
		}
		for _, m := range j.Messages {
			parts = append(parts, strings.Join(m, ": "))
		}
		if j.Detail != "" {
			parts = append(parts, j.Detail)
		}
		if j.Message != "" {
			parts = append(parts, j.Message)
		}
		if len(parts) > 0 {
			return clip(strings.Join(parts, "; "))
		}
	}
	line, _, _ := bytes.Cut(body, []byte("\n"))
	return clip(strconv.Quote(string(line)))
}

func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// DecodeJSON unmarshals data into v; a syntax or type error names the line
// and column where it happened (and says when the answer is not JSON).
func DecodeJSON(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset - 1 // Offset counts the offending byte
		if off < 0 {
			off = 0
		}
	case errors.As(err, &te):
		off = te.Offset
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' && t[0] != '[' {
		line, _, _ := bytes.Cut(t, []byte("\n"))
		return fmt.Errorf("answer is not JSON (starts with %s): %w", clip(strconv.Quote(string(line))), err)
	}
	if off >= 0 {
		line, col := Position(data, off)
		return fmt.Errorf("line %d column %d: %w", line, col, err)
	}
	return err
}

// Position converts a byte offset into a 1-based line and column.
func Position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// EachASN calls fn for every ASN with at most workers calls at a time (a
// registry is asked politely, not flooded); a cancelled ctx stops the
// remaining calls. The failures are returned as one error, in ASN order,
// each named "<what> AS<n>"; ASNs that failed the same way share one entry
// ("announced-prefixes AS1, AS2: HTTP 503 ..."), so that a dead registry
// reads as one line.
func EachASN(ctx context.Context, what string, asns []uint32, workers int, fn func(ctx context.Context, asn uint32) error) error {
	if workers <= 0 {
		workers = 1
	}
	errs := make([]error, len(asns))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, a := range asns {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(ctx, a)
		}()
	}
	wg.Wait()
	var out multiError
	group := map[string]int{} // message -> index in out
	for i, e := range errs {
		if e == nil {
			continue
		}
		if j, ok := group[e.Error()]; ok {
			out[j].asns = append(out[j].asns, asns[i])
			continue
		}
		group[e.Error()] = len(out)
		out = append(out, asnError{what: what, asns: []uint32{asns[i]}, err: e})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// asnError is one failure, shared by one or more ASNs.
type asnError struct {
	what string
	asns []uint32
	err  error
}

func (e asnError) Error() string {
	var b strings.Builder
	b.WriteString(e.what)
	for i, a := range e.asns {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " AS%d", a)
	}
	return b.String() + ": " + e.err.Error()
}

func (e asnError) Unwrap() error { return e.err }

// multiError joins errors on one line (they end up in a snapshot's
// incomplete list and in log lines).
type multiError []asnError

func (m multiError) Error() string {
	s := make([]string, len(m))
	for i, e := range m {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (m multiError) Unwrap() []error {
	out := make([]error, len(m))
	for i, e := range m {
		out[i] = e
	}
	return out
}
