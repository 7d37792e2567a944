package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Doc is one input document (a file or a downloaded URL) with its checksum.
type Doc struct {
	// Input is the path or URL.
	Input  string
	Data   []byte
	SHA256 string
	// Time is the file's modification time, or when the URL was fetched.
	Time time.Time
}

// ReadFile reads a local file of at most max bytes.
func ReadFile(path string, max int64) (Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return Doc{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Doc{}, err
	}
	if st.IsDir() {
		return Doc{}, fmt.Errorf("%s is a directory", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return Doc{}, err
	}
	if int64(len(data)) > max {
		return Doc{}, fmt.Errorf("%s is larger than the %d-byte limit", path, max)
	}
	return newDoc(path, data, st.ModTime()), nil
}

func newDoc(input string, data []byte, t time.Time) Doc {
	sum := sha256.Sum256(data)
	return Doc{Input: input, Data: data, SHA256: hex.EncodeToString(sum[:]), Time: t.UTC()}
}

// Cached is a document from a path or a URL, parsed into T and kept: a file
// is read again when its modification time changes, a URL is fetched again
// once the copy is older than MaxAge. A failed reload keeps nothing stale:
// the error is returned and the next call tries again.
//
// With Open set instead of Parse it works in large-file mode, for
// documents too large for memory (routing tables): a URL is streamed into
// CacheFile on disk (see Client.Download), and reused while younger than
// MaxAge, across restarts too; a path is read in place. Open reads the
// document once per change and returns a compact value (an index). It may
// return a value together with an error when the document breaks part-way
// (what was read before the break is worth keeping): Get then returns both,
// and keeps returning both until the document changes (a broken file is
// not read again and again within one run).
type Cached[T any] struct {
	Path   string
	URL    string
	Client *Client
	// MaxAge of a downloaded copy; 0 means an hour.
	MaxAge time.Duration
	Parse  func(Doc) (T, error)
	// CacheFile is where large-file mode keeps a URL's document.
	CacheFile string
	// Open reads a document in large-file mode from r; d has its Input and
	// Time (its SHA256 is filled in afterwards, from what r delivered and
	// the rest of the file).
	Open func(ctx context.Context, r io.Reader, d Doc) (T, error)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	val    T
	doc    Doc
	at     time.Time
	err    error
	loaded bool
}

// Get returns the parsed document, loading or refreshing it if needed.
func (c *Cached[T]) Get(ctx context.Context) (T, Doc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if c.loaded && c.fresh(now()) {
		return c.val, c.doc, c.err
	}
	cl := c.Client
	if cl == nil {
		cl = &Client{}
	}
	var zero T
	if c.Open != nil {
		v, doc, err := c.getLarge(ctx, cl, now())
		if err != nil && doc.Input == "" {
			c.loaded = false
			return zero, Doc{}, err
		}
		c.val, c.doc, c.at, c.err, c.loaded = v, doc, doc.Time, err, true
		return v, doc, err
	}
	var doc Doc
	var err error
	if c.Path != "" {
		doc, err = ReadFile(c.Path, cl.Limit())
	} else {
		var data []byte
		data, err = cl.Get(ctx, c.URL, "")
		doc = newDoc(c.URL, data, now())
	}
	if err != nil {
		c.loaded = false
		return zero, Doc{}, err
	}
	v, err := c.Parse(doc)
	if err != nil {
		c.loaded = false
		return zero, Doc{}, err
	}
	c.val, c.doc, c.at, c.err, c.loaded = v, doc, now(), nil, true
	return v, doc, nil
}

// Loaded returns the current value and document without any I/O, if one
// was loaded.
func (c *Cached[T]) Loaded() (T, Doc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.val, c.doc, c.loaded
}

func (c *Cached[T]) fresh(now time.Time) bool {
	if c.Path != "" {
		st, err := os.Stat(c.Path)
		return err == nil && st.ModTime().UTC().Equal(c.doc.Time)
	}
	return now.Sub(c.at) < c.maxAge()
}

func (c *Cached[T]) maxAge() time.Duration {
	if c.MaxAge > 0 {
		return c.MaxAge
	}
	return time.Hour
}
