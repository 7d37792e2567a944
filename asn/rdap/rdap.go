// Package rdap asks RDAP servers (RFC 9082 queries, RFC 9083 answers) who
// holds each of a target's ASNs, and records the holder name and status as
// evidence, flagging holders whose name matches none of the target's names.
package rdap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// Options configure the client.
type Options struct {
	// BaseURL of an RDAP server or bootstrap redirector (e.g.
	// https://rdap.org/ answers with a redirect to the right RIR).
	BaseURL string
	// Client makes the requests; nil means defaults.
	Client *fetch.Client
	// Workers is how many queries run at once (default 4).
	Workers int
	// Now stamps evidence; nil means time.Now.
	Now func() time.Time
}

// Client is an RDAP source. It implements asn.Resolver.
type Client struct {
	base string
	opts Options
	http *fetch.Client
}

// New creates an RDAP client.
func New(o Options) (*Client, error) {
	base, err := fetch.BaseURL(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("rdap: %w", err)
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Client{base: base, opts: o, http: o.Client}
	if c.http == nil {
		c.http = &fetch.Client{}
	}
	return c, nil
}

// Name implements asn.Source.
func (c *Client) Name() string { return "rdap:" + c.opts.BaseURL }

// Autnum is what asfence uses of an RDAP autnum object.
type Autnum struct {
	Handle string
	Name   string
	Start  uint32
	End    uint32
	Status []string
	// Holder is the registrant's name, or the first description remark
	// when no registrant entity is given (APNIC's style).
	Holder string
	// HolderFrom says where Holder came from: "registrant" or "remarks".
	HolderFrom string
}

// Lookup fetches one autnum. found is false when the server has no such
// object (HTTP 404), which is an answer, not an error.
func (c *Client) Lookup(ctx context.Context, n uint32) (a Autnum, found bool, err error) {
	body, err := c.http.Get(ctx, fmt.Sprintf("%s/autnum/%d", c.base, n), "application/rdap+json, application/json")
	if errors.Is(err, fetch.ErrNotFound) {
		return Autnum{}, false, nil
	}
	if err != nil {
		return Autnum{}, false, err
	}
	a, err = Parse(body, n)
	return a, err == nil, err
}

// Resolve records, for each of the target's ASNs the server knows, who
// holds it. A holder whose name matches none of the target's names is
// still recorded, flagged in the detail, for a human to look at.
func (c *Client) Resolve(ctx context.Context, t *asn.Target, asns []uint32) (asn.Facts, error) {
	re := t.NameMatcher()
	var mu sync.Mutex
	var out asn.Facts
	err := fetch.EachASN(ctx, "autnum", asns, c.opts.Workers, func(ctx context.Context, n uint32) error {
		a, found, err := c.Lookup(ctx, n)
		if err != nil {
			return err
		}
		if !found {
			return nil
		}
		detail := a.describe()
		holder := a.Holder
		if holder == "" {
			holder = a.Name
		}
		if re != nil && !re.MatchString(holder) {
			detail += "; holder does not match target names"
		}
		mu.Lock()
		defer mu.Unlock()
		out.ASNs = append(out.ASNs, asn.ASNFact{ASN: n, Name: a.Name,
			Evidence: asn.Evidence{Source: "rdap", Detail: detail, Seen: c.opts.Now().UTC()}})
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("rdap %s: %w", c.opts.BaseURL, err)
	}
	return out, nil
}

func (a *Autnum) describe() string {
	var b strings.Builder
	if a.Holder != "" {
		fmt.Fprintf(&b, "holder %q", a.Holder)
		if a.HolderFrom == "remarks" {
			b.WriteString(" (from the description)")
		}
	} else {
		b.WriteString("no holder named")
	}
	if a.Name != "" {
		fmt.Fprintf(&b, ", name %s", a.Name)
	}
	if a.End > a.Start {
		fmt.Fprintf(&b, ", block AS%d-AS%d", a.Start, a.End)
	}
	if len(a.Status) > 0 {
		fmt.Fprintf(&b, ", status %s", strings.Join(a.Status, " "))
	} else {
		b.WriteString(", no status")
	}
	return b.String()
}

// RFC 9083 members asfence reads.
type autnumJSON struct {
	ObjectClassName *string      `json:"objectClassName"`
	Handle          string       `json:"handle"`
	Name            string       `json:"name"`
	StartAutnum     *uint32      `json:"startAutnum"`
	EndAutnum       *uint32      `json:"endAutnum"`
	Status          []string     `json:"status"`
	Entities        []entityJSON `json:"entities"`
	Remarks         []remarkJSON `json:"remarks"`
}

type entityJSON struct {
	Handle     string          `json:"handle"`
	Roles      []string        `json:"roles"`
	VCardArray json.RawMessage `json:"vcardArray"`
}

type remarkJSON struct {
	Title       string   `json:"title"`
	Description []string `json:"description"`
}

// Parse reads an RDAP autnum answer for ASN n. It is an error when the
// answer is not JSON, not an autnum object, or about another ASN.
func Parse(body []byte, n uint32) (Autnum, error) {
	var j autnumJSON
	if err := fetch.DecodeJSON(body, &j); err != nil {
		return Autnum{}, err
	}
	if j.ObjectClassName == nil {
		return Autnum{}, errors.New(`answer has no "objectClassName": not an RDAP object`)
	}
	if *j.ObjectClassName != "autnum" {
		return Autnum{}, fmt.Errorf("answer is an RDAP %q object, not an autnum", *j.ObjectClassName)
	}
	a := Autnum{Handle: j.Handle, Name: j.Name, Start: n, End: n, Status: j.Status}
	if j.StartAutnum != nil {
		a.Start = *j.StartAutnum
		a.End = a.Start
		if j.EndAutnum != nil {
			a.End = *j.EndAutnum
		}
	}
	if n < a.Start || n > a.End {
		return Autnum{}, fmt.Errorf("answer is about AS%d-AS%d, not AS%d", a.Start, a.End, n)
	}
	for _, e := range j.Entities {
		if !contains(e.Roles, "registrant") {
			continue
		}
		fn, err := vcardName(e.VCardArray)
		if err != nil {
			return Autnum{}, fmt.Errorf("registrant entity %s: %w", e.Handle, err)
		}
		if fn != "" {
			a.Holder, a.HolderFrom = fn, "registrant"
			break
		}
	}
	if a.Holder == "" {
		for _, r := range j.Remarks {
			if strings.EqualFold(r.Title, "description") && len(r.Description) > 0 && strings.TrimSpace(r.Description[0]) != "" {
				a.Holder, a.HolderFrom = strings.TrimSpace(r.Description[0]), "remarks"
				break
			}
		}
	}
	return a, nil
}

// vcardName returns the "fn" (or else "org") of a jCard (RFC 7095):
// ["vcard", [[name, params, type, value], ...]].
func vcardName(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var top []json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || len(top) != 2 {
		return "", errors.New(`vcardArray is not ["vcard", [properties]]`)
	}
	var tag string
	var props [][]json.RawMessage
	if json.Unmarshal(top[0], &tag) != nil || tag != "vcard" || json.Unmarshal(top[1], &props) != nil {
		return "", errors.New(`vcardArray is not ["vcard", [properties]]`)
	}
	var org string
	for _, p := range props {
		if len(p) < 4 {
			return "", errors.New("vcard property with fewer than 4 members")
		}
		var name string
		if json.Unmarshal(p[0], &name) != nil {
			return "", errors.New("vcard property name is not a string")
		}
		var val string
		if json.Unmarshal(p[3], &val) != nil {
			continue // structured values (adr) are not names
		}
		switch strings.ToLower(name) {
		case "fn":
			if strings.TrimSpace(val) != "" {
				return strings.TrimSpace(val), nil
			}
		case "org":
			org = strings.TrimSpace(val)
		}
	}
	return org, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
