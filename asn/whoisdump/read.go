package whoisdump

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asfence/asfence/asn/internal/fetch"
	"github.com/asfence/asfence/asn/rpsl"
)

// counter counts the (compressed) bytes read from a file, so that a damaged
// stream can be located by byte offset.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readahead decompresses in its own goroutine, a few buffers ahead of the
// parser, so that the two run on different cores (as zcat | awk does).
type readahead struct {
	chunks chan chunk
	free   chan []byte
	done   chan struct{}
	wg     sync.WaitGroup
	buf    []byte // the chunk being read (returned to free when used up)
	cur    []byte // its unread part
	err    error
}

type chunk struct {
	b   []byte
	err error
}

const (
	readaheadChunks = 4
	readaheadSize   = 256 << 10
)

func newReadahead(r io.Reader) *readahead {
	ra := &readahead{chunks: make(chan chunk, readaheadChunks), free: make(chan []byte, readaheadChunks+1), done: make(chan struct{})}
	for range readaheadChunks + 1 {
		ra.free <- make([]byte, readaheadSize)
	}
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		for {
			var b []byte
			select {
			case b = <-ra.free:
			case <-ra.done:
				return
			}
			n, err := 0, error(nil)
			for n < len(b) && err == nil {
				var k int
				k, err = r.Read(b[n:])
				n += k
			}
			select {
			case ra.chunks <- chunk{b[:n], err}:
			case <-ra.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ra
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		c := <-ra.chunks
		ra.buf, ra.cur, ra.err = c.b, c.b, c.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// close stops the goroutine (after which the underlying reader is free).
func (ra *readahead) close() {
	select {
	case <-ra.done:
	default:
		close(ra.done)
	}
	ra.wg.Wait()
}

// objects streams the RPSL objects of one dump file (compressed or not).
type objects struct {
	name string // as shown in errors: the configured path or URL
	f    *os.File
	raw  *counter
	sum  hash.Hash
	kind fetch.Compression
	ra   *readahead
	rd   *rpsl.Reader
	ctx  context.Context
	n    int
}

// openObjects opens path (shown as name in errors) and reads the objects of
// the given classes, keeping only the given attributes.
func openObjects(ctx context.Context, path, name string, classes, attrs []string) (*objects, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	o := &objects{name: name, f: f, sum: sha256.New(), ctx: ctx}
	o.raw = &counter{r: io.TeeReader(f, o.sum)}
	r, kind, err := fetch.Decompress(o.raw)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	o.kind = kind
	o.ra = newReadahead(r)
	o.rd = rpsl.NewReader(o.ra, name)
	o.rd.Classes(classes...)
	o.rd.Attributes(attrs...)
	o.rd.Reuse()
	return o, nil
}

// next returns the next object, io.EOF at the end, or an error naming the
// file and line (and, in a compressed file, the compressed byte offset).
func (o *objects) next() (*rpsl.Object, error) {
	o.n++
	if o.n%4096 == 0 {
		if err := o.ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: stopped at line %d: %w", o.name, o.rd.Line(), err)
		}
	}
	obj, err := o.rd.Next()
	if err == nil || err == io.EOF {
		return obj, err
	}
	var pe *rpsl.ParseError
	if errors.As(err, &pe) {
		return nil, err
	}
	if o.kind != fetch.Plain {
		return nil, fmt.Errorf("%w (%s stream damaged near compressed byte %d)", err, o.kind, o.raw.n)
	}
	return nil, err
}

// checksum drains the rest of the file (after a complete read) and returns
// its SHA-256.
func (o *objects) checksum() (string, error) {
	o.ra.close()
	if _, err := io.Copy(io.Discard, o.raw); err != nil {
		return "", fmt.Errorf("%s: %w", o.name, err)
	}
	return hex.EncodeToString(o.sum.Sum(nil)), nil
}

func (o *objects) close() {
	o.ra.close()
	o.f.Close()
}

// lastModified is an object's last-modified: date, or fallback. APNIC's
// older objects carry only "changed: email YYYYMMDD" lines; the latest of
// those is used then.
func lastModified(obj *rpsl.Object, fallback time.Time) time.Time {
	if v, ok := obj.Get("last-modified"); ok {
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(v)); err == nil {
			return t.UTC()
		}
	}
	var latest time.Time
	for _, v := range obj.Values("changed") {
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if t, err := time.Parse("20060102", f[len(f)-1]); err == nil && t.After(latest) {
			latest = t
		}
	}
	if !latest.IsZero() {
		return latest
	}
	return fallback
}

// handles returns the upper-cased handles listed in the named attributes
// (several per line are allowed, separated by commas or spaces).
func handles(obj *rpsl.Object, names ...string) []string {
	var out []string
	eachHandle(obj, func(h string) {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}, names...)
	return out
}

// eachHandle calls fn with every upper-cased handle listed in the named
// attributes, without allocating for handles already in upper case.
func eachHandle(obj *rpsl.Object, fn func(string), names ...string) {
	for _, a := range obj.Attrs {
		if !slices.Contains(names, a.Name) {
			continue
		}
		for h := range strings.FieldsFuncSeq(a.Value, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		}) {
			fn(strings.ToUpper(h))
		}
	}
}

// firstValue is the first line of an attribute's first value.
func firstValue(obj *rpsl.Object, name string) string {
	v, _ := obj.Get(name)
	line, _, _ := strings.Cut(v, "\n")
	return strings.TrimSpace(line)
}
