// Package ripestat asks the RIPEstat Data API which prefixes each of a
// target's ASNs announced in BGP, as seen by the RIS route collectors
// (https://stat.ripe.net/docs/02.data-api/announced-prefixes.html).
package ripestat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// DefaultBaseURL is the public RIPEstat service.
const DefaultBaseURL = "https://stat.ripe.net"

// Options configure the client.
type Options struct {
	// BaseURL of the service (default DefaultBaseURL).
	BaseURL string
	// SourceApp is sent as sourceapp=, which RIPEstat asks regular users
	// to set (default "asfence").
	SourceApp string
	// Client makes the requests; nil means defaults.
	Client *fetch.Client
	// Workers is how many queries run at once (default 4; RIPEstat asks
	// clients to keep concurrency low).
	Workers int
	// Now stamps evidence when an answer carries no time; nil means time.Now.
	Now func() time.Time
}

// Client is a RIPEstat source. It implements asn.Resolver.
type Client struct {
	opts Options
	base string
	http *fetch.Client
}

// New creates a RIPEstat client.
func New(o Options) (*Client, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	base, err := fetch.BaseURL(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("ripestat: %w", err)
	}
	if o.SourceApp == "" {
		o.SourceApp = "asfence"
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Client{opts: o, base: base, http: o.Client}
	if c.http == nil {
		c.http = &fetch.Client{}
	}
	return c, nil
}

// Name implements asn.Source.
func (c *Client) Name() string { return "ripestat:" + c.opts.BaseURL }

// Announced is one prefix with the periods it was seen announced.
type Announced struct {
	Prefix  netip.Prefix
	Periods [][2]time.Time
}

// Answer is a parsed announced-prefixes answer.
type Answer struct {
	Resource   string
	QueryStart time.Time
	QueryEnd   time.Time
	Prefixes   []Announced
}

type answerJSON struct {
	Status       *string    `json:"status"`
	Messages     [][]string `json:"messages"`
	DataCallName string     `json:"data_call_name"`
	Data         *struct {
		Prefixes *[]struct {
			Prefix    string `json:"prefix"`
			Timelines []struct {
				Start string `json:"starttime"`
				End   string `json:"endtime"`
			} `json:"timelines"`
		} `json:"prefixes"`
		Resource   any    `json:"resource"`
		QueryStart string `json:"query_starttime"`
		QueryEnd   string `json:"query_endtime"`
	} `json:"data"`
}

// RIPEstat writes times as "2026-05-27T16:00:00" (UTC, no zone), older
// answers as "2023-07-03 15:49:57".
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not ISO 8601", s)
}

// Parse reads an announced-prefixes answer for ASN n. A status other than
// "ok", a missing prefix list, an answer about another resource or an
// unparsable prefix is an error.
func Parse(body []byte, n uint32) (Answer, error) {
	var j answerJSON
	if err := fetch.DecodeJSON(body, &j); err != nil {
		return Answer{}, err
	}
	if j.Status == nil {
		return Answer{}, errors.New(`answer has no "status": not a RIPEstat answer`)
	}
	if *j.Status != "ok" {
		return Answer{}, fmt.Errorf("status %q%s", *j.Status, messages(j.Messages))
	}
	if j.DataCallName != "" && j.DataCallName != "announced-prefixes" {
		return Answer{}, fmt.Errorf("answer is from data call %q, not announced-prefixes", j.DataCallName)
	}
	if j.Data == nil || j.Data.Prefixes == nil {
		return Answer{}, errors.New(`answer has no "data.prefixes" list`)
	}
	res := fmt.Sprint(j.Data.Resource)
	if j.Data.Resource != nil && strings.TrimPrefix(strings.ToUpper(res), "AS") != strconv.FormatUint(uint64(n), 10) {
		return Answer{}, fmt.Errorf("answer is about resource %q, not AS%d", res, n)
	}
	a := Answer{Resource: res}
	if j.Data.QueryStart != "" {
		t, err := parseTime(j.Data.QueryStart)
		if err != nil {
			return Answer{}, fmt.Errorf("data.query_starttime: %w", err)
		}
		a.QueryStart = t
	}
	if j.Data.QueryEnd != "" {
		t, err := parseTime(j.Data.QueryEnd)
		if err != nil {
			return Answer{}, fmt.Errorf("data.query_endtime: %w", err)
		}
		a.QueryEnd = t
	}
	for i, p := range *j.Data.Prefixes {
		pfx, err := asn.ParsePrefix(p.Prefix)
		if err != nil {
			return Answer{}, fmt.Errorf("data.prefixes[%d]: %w", i, err)
		}
		an := Announced{Prefix: pfx}
		for k, tl := range p.Timelines {
			s, err1 := parseTime(tl.Start)
			e, err2 := parseTime(tl.End)
			if err := errors.Join(err1, err2); err != nil {
				return Answer{}, fmt.Errorf("data.prefixes[%d].timelines[%d]: %w", i, k, err)
			}
			an.Periods = append(an.Periods, [2]time.Time{s, e})
		}
		a.Prefixes = append(a.Prefixes, an)
	}
	return a, nil
}

func messages(m [][]string) string {
	var parts []string
	for _, x := range m {
		parts = append(parts, strings.Join(x, ": "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// Announced fetches the prefixes ASN n announced in the default window
// (the last two weeks).
func (c *Client) Announced(ctx context.Context, n uint32) (Answer, error) {
	q := url.Values{"resource": {fmt.Sprintf("AS%d", n)}, "sourceapp": {c.opts.SourceApp}}
	body, err := c.http.Get(ctx, c.base+"/data/announced-prefixes/data.json?"+q.Encode(), "application/json")
	if err != nil {
		// RIPEstat answers "no prefixes" with an empty list, never 404: a
		// 404 means the base URL is wrong, so it stays an error.
		return Answer{}, err
	}
	return Parse(body, n)
}

// Resolve returns the prefixes each of the target's ASNs announced, with
// the window they were seen in.
func (c *Client) Resolve(ctx context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	var mu sync.Mutex
	var out asn.Facts
	err := fetch.EachASN(ctx, "announced-prefixes", asns, c.opts.Workers, func(ctx context.Context, n uint32) error {
		a, err := c.Announced(ctx, n)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range a.Prefixes {
			first, last := a.QueryStart, a.QueryEnd
			for i, pd := range p.Periods {
				if i == 0 || pd[0].Before(first) {
					first = pd[0]
				}
				if i == 0 || pd[1].After(last) {
					last = pd[1]
				}
			}
			seen := last
			if seen.IsZero() {
				seen = c.opts.Now().UTC()
			}
			detail := fmt.Sprintf("announced by AS%d", n)
			if !first.IsZero() && !last.IsZero() {
				detail += fmt.Sprintf(", seen by RIS %s to %s", first.Format("2006-01-02 15:04"), last.Format("2006-01-02 15:04 UTC"))
			}
			out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: p.Prefix, Origin: n,
				Evidence: asn.Evidence{Source: "ripestat", Detail: detail, Seen: seen}})
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("ripestat %s: %w", c.opts.BaseURL, err)
	}
	return out, nil
}
