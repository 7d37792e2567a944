package asn

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// fastDecode parses a Snapshot JSON document in one pass, without
// reflection: decoding a 100k-prefix snapshot with encoding/json took most of
// the time of `generate --snapshot`. It gives up (ok false) on anything it
// does not handle exactly as encoding/json would (null, duplicate keys, keys
// differing only in case, numbers with a sign, fraction or exponent, syntax
// errors); the caller then decodes with encoding/json, which also produces
// the error messages. A fuzz test checks both agree on what it accepts.
func fastDecode(data []byte) (raw rawSnapshot, ok bool) {
	p := fastParser{b: data}
	p.object(topKeys, func(k int) {
		switch k {
		case 0:
			t := p.time()
			raw.GeneratedAt = &t
		case 1:
			raw.Generator = p.str()
		case 2:
			raw.Incomplete = []Incomplete{}
			p.array(func() {
				var in Incomplete
				p.object(incompleteKeys, func(k int) {
					switch k {
					case 0:
						in.Source = p.str()
					case 1:
						in.Target = p.str()
					case 2:
						in.Error = p.str()
					}
				})
				raw.Incomplete = append(raw.Incomplete, in)
			})
		case 3:
			raw.Provenance = []Input{}
			p.array(func() {
				var in Input
				p.object(inputKeys, func(k int) {
					switch k {
					case 0:
						in.Source = p.str()
					case 1:
						in.Input = p.str()
					case 2:
						in.SHA256 = p.str()
					case 3:
						in.Note = p.str()
					case 4:
						in.Kind = p.str()
					}
				})
				raw.Provenance = append(raw.Provenance, in)
			})
		case 4:
			raw.Targets = []rawTarget{}
			p.array(func() { raw.Targets = append(raw.Targets, p.target()) })
		}
	})
	p.ws()
	if p.i != len(p.b) {
		p.giveUp()
	}
	if p.failed {
		return rawSnapshot{}, false
	}
	return raw, true
}

var (
	topKeys        = []string{"generated_at", "generator", "incomplete", "provenance", "targets"}
	incompleteKeys = []string{"source", "target", "error"}
	inputKeys      = []string{"source", "input", "sha256", "note", "kind"}
	targetKeys     = []string{"name", "description", "id", "asns", "prefixes"}
	asnKeys        = []string{"asn", "name", "name_only", "evidence"}
	prefixKeys     = []string{"prefix", "origins", "evidence", "upstreams"}
	evidenceKeys   = []string{"source", "detail", "seen"}
)

// fastParser reads JSON; once it fails, every call returns at once with a
// zero value, and the caller checks failed at the end.
type fastParser struct {
	b      []byte
	i      int
	failed bool
	// The last source, detail and time read: large snapshots repeat them,
	// and reusing them saves an allocation or a time parse each.
	src, det, seenText string
	seen               time.Time
}

// giveUp marks the parse as failed and moves to the end of the input, so
// that every loop stops.
func (p *fastParser) giveUp() {
	p.failed = true
	p.i = len(p.b)
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) expect(c byte) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != c {
		p.giveUp()
	}
	p.i++
}

// peek returns the next non-space byte without consuming it.
func (p *fastParser) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		p.giveUp()
		return 0
	}
	return p.b[p.i]
}

// object parses {"key": value, ...}; field is called with the index of a
// known key and must consume its value. Unknown keys are skipped, as
// encoding/json does.
func (p *fastParser) object(keys []string, field func(int)) {
	p.expect('{')
	if p.peek() == '}' {
		p.i++
		return
	}
	var seen uint32
	for !p.failed {
		k := p.rawString()
		p.expect(':')
		idx := -1
		for j, name := range keys {
			if string(k) == name {
				idx = j
				break
			}
		}
		if idx < 0 {
			for _, name := range keys {
				if strings.EqualFold(string(k), name) {
					p.giveUp() // encoding/json matches keys case-insensitively
				}
			}
			p.skip()
		} else {
			if seen&(1<<idx) != 0 || p.peek() == 'n' {
				p.giveUp() // duplicate key, or null
			}
			seen |= 1 << idx
			field(idx)
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return
		default:
			p.giveUp()
		}
	}
}

func (p *fastParser) array(elem func()) {
	p.expect('[')
	if p.peek() == ']' {
		p.i++
		return
	}
	for !p.failed {
		if p.peek() == 'n' {
			p.giveUp()
			return
		}
		elem()
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return
		default:
			p.giveUp()
		}
	}
}

// rawString returns the bytes of a string without escapes or non-ASCII
// bytes; anything else is left to encoding/json's rules.
func (p *fastParser) rawString() []byte {
	p.expect('"')
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1]
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return p.slowString(start - 1)
		}
		p.i++
	}
	p.giveUp()
	return nil
}

// slowString decodes the string starting at the quote at q with
// encoding/json (escapes, UTF-8 handling exactly as it does them).
func (p *fastParser) slowString(q int) []byte {
	end := q + 1
	for end < len(p.b) && p.b[end] != '"' {
		if p.b[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(p.b) {
		p.giveUp()
		return nil
	}
	var s string
	if err := json.Unmarshal(p.b[q:end+1], &s); err != nil {
		p.giveUp()
		return nil
	}
	p.i = end + 1
	return []byte(s)
}

func (p *fastParser) str() string {
	if p.peek() != '"' {
		p.giveUp()
		return ""
	}
	return string(p.rawString())
}

// quoted reads a string value as bytes.
func (p *fastParser) quoted() []byte {
	if p.peek() != '"' {
		p.giveUp()
		return nil
	}
	return p.rawString()
}

// cached returns s as a string, reusing *last when equal.
func cached(last *string, s []byte) string {
	if string(s) != *last {
		*last = string(s)
	}
	return *last
}

func (p *fastParser) time() time.Time {
	if p.peek() != '"' {
		p.giveUp()
		return time.Time{}
	}
	start := p.i
	s := p.rawString()
	if p.failed {
		return time.Time{}
	}
	if p.seenText != "" && string(s) == p.seenText {
		return p.seen
	}
	var t time.Time
	if err := t.UnmarshalJSON(p.b[start:p.i]); err != nil {
		p.giveUp()
		return time.Time{}
	}
	p.seenText, p.seen = string(s), t
	return t
}

// uint reads a non-negative integer as encoding/json would accept it.
func (p *fastParser) uint(bits int) uint64 {
	p.ws()
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' ||
		p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.giveUp()
		return 0
	}
	v, err := strconv.ParseUint(string(digits), 10, bits)
	if err != nil {
		p.giveUp()
		return 0
	}
	return v
}

func (p *fastParser) bool() bool {
	p.ws()
	switch {
	case p.failed:
		return false
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false
	}
	p.giveUp()
	return false
}

// skip consumes any value (of an unknown key).
func (p *fastParser) skip() {
	switch c := p.peek(); {
	case c == '{':
		p.object(nil, func(int) {})
	case c == '[':
		p.array(p.skip)
	case c == '"':
		p.rawString()
	case c == 't' || c == 'f':
		p.bool()
	case c == 'n':
		if !bytes.HasPrefix(p.b[p.i:], []byte("null")) {
			p.giveUp()
			return
		}
		p.i += 4
	case c >= '0' && c <= '9':
		p.uint(64)
	default:
		// A sign, a syntax error, or the end: encoding/json judges it.
		p.giveUp()
	}
}

func (p *fastParser) evidence() []Evidence {
	out := []Evidence{}
	p.array(func() {
		var e Evidence
		p.object(evidenceKeys, func(k int) {
			switch k {
			case 0:
				e.Source = cached(&p.src, p.quoted())
			case 1:
				e.Detail = cached(&p.det, p.quoted())
			case 2:
				e.Seen = p.time()
			}
		})
		out = append(out, e)
	})
	return out
}

func (p *fastParser) target() rawTarget {
	var t rawTarget
	p.object(targetKeys, func(k int) {
		switch k {
		case 0:
			t.Name = p.str()
		case 1:
			t.Description = p.str()
		case 2:
			t.ID = uint32(p.uint(32))
		case 3:
			t.ASNs = []rawASN{}
			p.array(func() {
				var a rawASN
				p.object(asnKeys, func(k int) {
					switch k {
					case 0:
						v := int64(p.uint(63))
						a.ASN = &v
					case 1:
						a.Name = p.str()
					case 2:
						a.NameOnly = p.bool()
					case 3:
						a.Evidence = p.evidence()
					}
				})
				t.ASNs = append(t.ASNs, a)
			})
		case 4:
			t.Prefixes = []rawPrefix{}
			p.array(func() {
				var r rawPrefix
				p.object(prefixKeys, func(k int) {
					switch k {
					case 0:
						r.Prefix = p.str()
					case 1:
						r.Origins = []int64{}
						p.array(func() { r.Origins = append(r.Origins, int64(p.uint(63))) })
					case 2:
						r.Evidence = p.evidence()
					case 3:
						r.Upstreams = []int64{}
						p.array(func() { r.Upstreams = append(r.Upstreams, int64(p.uint(63))) })
					}
				})
				t.Prefixes = append(t.Prefixes, r)
			})
		}
	})
	return t
}
