package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Download streams the body of url into the file path, never holding it in
// memory: large inputs (routing tables of hundreds of megabytes) go to disk
// and are read from there. The body is written to path+".part" and renamed
// over path only when complete, so path is either the old or the new
// document, never half of one. The answer is bounded by the client's
// MaxBytes, and the client's Timeout bounds connecting and receiving the
// headers, and then every stall of the body (no byte for that long), not
// the whole transfer (Stream bounds the whole transfer).
//
// If path exists, the request asks whether the document changed since the
// file was written (If-Modified-Since); an answer of 304 keeps the file and
// marks it fresh. The returned Doc has no Data: its Time is when the file
// was fetched (or confirmed unchanged) and its SHA256 the file's (empty
// after a 304: the caller reads the file anyway).
func (c *Client) Download(ctx context.Context, url, path string) (Doc, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := c.timeout()
	errStalled := fmt.Errorf("no data for %s", stall)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()

	var ims string
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		ims = st.ModTime().UTC().Format(http.TimeFormat)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Doc{}, err
	}
	part := path + ".part"
	f, err := os.Create(part)
	if err != nil {
		return Doc{}, err
	}
	defer os.Remove(part) // a no-op once renamed
	d, notModified, err := c.copyBody(ctx, url, f, http.Header{"If-Modified-Since": {ims}}, func() { timer.Reset(stall) })
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Doc{}, stalled(ctx, err)
	}
	now := time.Now()
	if notModified {
		if err := os.Chtimes(path, now, now); err != nil {
			return Doc{}, err
		}
		return Doc{Input: url, Time: now.UTC()}, nil
	}
	if err := os.Chtimes(part, now, now); err != nil {
		return Doc{}, err
	}
	if err := os.Rename(part, path); err != nil {
		return Doc{}, err
	}
	return Doc{Input: url, SHA256: d.SHA256, Time: now.UTC()}, nil
}

// stalled names the stall timeout when it was what ended the transfer.
func stalled(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

type progressReader struct {
	r      io.Reader
	onRead func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.onRead()
	}
	return n, err
}

// hashingReader computes the SHA-256 of what is read through it.
type hashingReader struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (r *hashingReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.h.Write(b[:n])
	return n, err
}

// sum reads the rest of the input (what the reader did not consume) and
// returns the checksum of all of it.
func (r *hashingReader) sum() (string, error) {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(r.h.Sum(nil)), nil
}

// getLarge is Get in large-file mode: the document is a file on disk (the
// path, or the URL's copy in CacheFile, downloaded first unless fresh),
// handed to Open as a reader that also computes its checksum.
func (c *Cached[T]) getLarge(ctx context.Context, cl *Client, now time.Time) (T, Doc, error) {
	var zero T
	file, doc, err := c.localFile(ctx, cl, now)
	if err != nil {
		return zero, Doc{}, err
	}
	f, err := os.Open(file)
	if err != nil {
		return zero, Doc{}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is a directory", file)
		}
		return zero, Doc{}, err
	}
	hr := &hashingReader{r: f, h: sha256.New()}
	v, err := c.Open(ctx, hr, doc)
	if doc.SHA256 == "" {
		sum, herr := hr.sum()
		if herr != nil && err == nil {
			err = herr
		}
		doc.SHA256 = sum
	}
	return v, doc, err
}

// localFile returns the file to read: the path, or the URL's cached copy,
// downloaded first unless it is younger than MaxAge.
func (c *Cached[T]) localFile(ctx context.Context, cl *Client, now time.Time) (string, Doc, error) {
	if c.Path != "" {
		st, err := os.Stat(c.Path)
		if err != nil {
			return "", Doc{}, err
		}
		return c.Path, Doc{Input: c.Path, Time: st.ModTime().UTC()}, nil
	}
	if c.CacheFile == "" {
		return "", Doc{}, errors.New("large-file mode needs a cache file for a URL")
	}
	if st, err := os.Stat(c.CacheFile); err == nil && st.Mode().IsRegular() && now.Sub(st.ModTime()) < c.maxAge() {
		return c.CacheFile, Doc{Input: c.URL, Time: st.ModTime().UTC()}, nil
	}
	d, err := cl.Download(ctx, c.URL, c.CacheFile)
	if err != nil {
		return "", Doc{}, err
	}
	return c.CacheFile, d, nil
}
