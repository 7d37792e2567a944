// Package peeringdb finds a target's networks in PeeringDB: organisations
// whose name matches the target's names, then the networks (ASNs) those
// organisations hold (https://docs.peeringdb.com/api_specs/).
package peeringdb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// DefaultBaseURL is the public PeeringDB.
const DefaultBaseURL = "https://www.peeringdb.com"

// Options configure the client.
type Options struct {
	// BaseURL of PeeringDB (default DefaultBaseURL).
	BaseURL string
	// APIKeyFile holds a PeeringDB API key (sent as "Authorization:
	// Api-Key <key>"); anonymous queries are rate-limited harder.
	APIKeyFile string
	// Client makes the requests; nil means defaults.
	Client *fetch.Client
	// Now stamps evidence; nil means time.Now.
	Now func() time.Time
}

// Client is a PeeringDB source. It implements asn.Discoverer.
type Client struct {
	opts Options
	base string
	http *fetch.Client
}

// New creates a PeeringDB client, reading the API key file if one is set.
func New(o Options) (*Client, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	base, err := fetch.BaseURL(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("peeringdb: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	hc := fetch.Client{}
	if o.Client != nil {
		hc = *o.Client
	}
	if o.APIKeyFile != "" {
		b, err := os.ReadFile(o.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("peeringdb: api key: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" || strings.ContainsAny(key, " \t\r\n") {
			return nil, fmt.Errorf("peeringdb: api key file %s: want one key on one line", o.APIKeyFile)
		}
		hc.Header = hc.Header.Clone()
		if hc.Header == nil {
			hc.Header = http.Header{}
		}
		hc.Header.Set("Authorization", "Api-Key "+key)
	}
	return &Client{opts: o, base: base, http: &hc}, nil
}

// Name implements asn.Source.
func (c *Client) Name() string { return "peeringdb:" + c.opts.BaseURL }

// Org is a PeeringDB organisation.
type Org struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	AKA      string `json:"aka"`
	NameLong string `json:"name_long"`
	Status   string `json:"status"`
}

// Net is a PeeringDB network.
type Net struct {
	ID       int64  `json:"id"`
	OrgID    int64  `json:"org_id"`
	ASN      int64  `json:"asn"`
	Name     string `json:"name"`
	AKA      string `json:"aka"`
	InfoType string `json:"info_type"`
	Status   string `json:"status"`
}

// list fetches one list endpoint and decodes its "data" array.
func list[T any](ctx context.Context, c *Client, what string, q url.Values) ([]T, error) {
	body, err := c.http.Get(ctx, c.base+"/api/"+what+"?"+q.Encode(), "application/json")
	if err != nil {
		var se *fetch.StatusError
		if errors.As(err, &se) && se.Code == http.StatusTooManyRequests && c.opts.APIKeyFile == "" {
			err = fmt.Errorf("%w (anonymous queries have a low limit: set api_key_file)", err)
		}
		// List endpoints answer "nothing matched" with an empty list; a
		// 404 means a wrong base URL and stays an error.
		return nil, err
	}
	var doc struct {
		Data *[]T `json:"data"`
		Meta *struct {
			Error string `json:"error"`
		} `json:"meta"`
	}
	if err := fetch.DecodeJSON(body, &doc); err != nil {
		return nil, err
	}
	if doc.Meta != nil && doc.Meta.Error != "" {
		return nil, fmt.Errorf("error: %s", doc.Meta.Error)
	}
	if doc.Data == nil {
		return nil, errors.New(`answer has no "data" list`)
	}
	return *doc.Data, nil
}

// Discover returns the ASNs of the networks of every organisation whose
// name matches the target's names. PeeringDB's name__contains is a
// case-insensitive substring search, so each returned name is checked on
// word boundaries ("Lark" must not match "CLARK").
func (c *Client) Discover(ctx context.Context, t *asn.Target) ([]asn.ASNFact, error) {
	re := t.NameMatcher()
	if re == nil {
		return nil, nil
	}
	orgs := map[int64]Org{}
	for _, name := range t.Names {
		found, err := list[Org](ctx, c, "org", url.Values{"name__contains": {name}})
		if err != nil {
			return nil, fmt.Errorf("peeringdb %s: org name__contains=%q: %w", c.opts.BaseURL, name, err)
		}
		for _, o := range found {
			if o.ID <= 0 {
				return nil, fmt.Errorf("peeringdb %s: org name__contains=%q: organisation %q has no id", c.opts.BaseURL, name, o.Name)
			}
			if o.Status == "ok" && (re.MatchString(o.Name) || re.MatchString(o.AKA) || re.MatchString(o.NameLong)) {
				orgs[o.ID] = o
			}
		}
	}
	if len(orgs) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(orgs))
	for id := range orgs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := c.opts.Now().UTC()
	var out []asn.ASNFact
	for chunk := range slices.Chunk(ids, 50) {
		s := make([]string, len(chunk))
		for i, id := range chunk {
			s[i] = strconv.FormatInt(id, 10)
		}
		nets, err := list[Net](ctx, c, "net", url.Values{"org_id__in": {strings.Join(s, ",")}})
		if err != nil {
			return nil, fmt.Errorf("peeringdb %s: net org_id__in=%s: %w", c.opts.BaseURL, strings.Join(s, ","), err)
		}
		for _, n := range nets {
			o, ok := orgs[n.OrgID]
			if !ok || n.Status != "ok" {
				continue // not asked for, or deleted
			}
			if n.ASN <= 0 || n.ASN > 4294967295 {
				return nil, fmt.Errorf("peeringdb %s: net org_id__in=%s: net %d (%q): invalid asn %d", c.opts.BaseURL, strings.Join(s, ","), n.ID, n.Name, n.ASN)
			}
			detail := fmt.Sprintf("network %q (net %d", n.Name, n.ID)
			if n.InfoType != "" {
				detail += ", " + n.InfoType
			}
			detail += fmt.Sprintf(") of organisation %q (org %d)", o.Name, o.ID)
			out = append(out, asn.ASNFact{ASN: uint32(n.ASN), Name: n.Name,
				Evidence: asn.Evidence{Source: "peeringdb", Detail: detail, Seen: now}})
		}
	}
	return out, nil
}
