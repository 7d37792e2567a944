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
type Cached[T any] struct {
	Path   string
	URL    string
	Client *Client
	// MaxAge of a downloaded copy; 0 means an hour.
	MaxAge time.Duration
	Parse  func(Doc) (T, error)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	val    T
	doc    Doc
	at     time.Time
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
		return c.val, c.doc, nil
	}
	cl := c.Client
	if cl == nil {
		cl = &Client{}
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
	var zero T
	if err != nil {
		c.loaded = false
		return zero, Doc{}, err
	}
	v, err := c.Parse(doc)
	if err != nil {
		c.loaded = false
		return zero, Doc{}, err
	}
	c.val, c.doc, c.at, c.loaded = v, doc, now(), true
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
	age := c.MaxAge
	if age <= 0 {
		age = time.Hour
	}
	return now.Sub(c.at) < age
}
