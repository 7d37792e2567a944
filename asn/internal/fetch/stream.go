package fetch

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ulikunitz/xz"
)

// Compression names a compressed format recognised by Decompress.
type Compression string

// Formats recognised by their magic bytes.
const (
	Plain Compression = ""
	Gzip  Compression = "gzip"
	Bzip2 Compression = "bzip2"
	XZ    Compression = "xz"
)

// Decompress returns a reader of r's content: gzip (including several
// concatenated members), bzip2 and xz are recognised by their magic bytes
// (not file names: downloads and caches do not keep them) and decompressed
// as they are read; anything else passes unchanged. Formats it cannot read
// (zip, zstd) are an error naming the format, rather than garbage handed
// to a parser.
func Decompress(r io.Reader) (io.Reader, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, Plain, err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("gzip: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(br), Bzip2, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return nil, Plain, errors.New("a zip archive: unzip it first")
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, XZ, fmt.Errorf("xz: %w", err)
		}
		return zr, XZ, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, Plain, errors.New("zstd-compressed: not supported, decompress it or use the gzip file")
	}
	return br, Plain, nil
}

// Download describes a document streamed by Stream.
type Download struct {
	Bytes  int64
	SHA256 string
	// LastModified is the server's Last-Modified header (zero if none).
	LastModified time.Time
}

// Stream fetches url and copies the body of a 2xx answer to w as it
// arrives (for files too large to hold in memory), with the same timeout,
// size bound and errors as Get.
func (c *Client) Stream(ctx context.Context, url string, w io.Writer) (Download, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	d, _, err := c.copyBody(ctx, url, w, nil, nil)
	return d, err
}

// copyBody GETs url with the extra headers and copies a 2xx body to w,
// bounded by MaxBytes, calling progress (if any) after every read. A 304
// answer to a conditional request copies nothing and says so.
func (c *Client) copyBody(ctx context.Context, url string, w io.Writer, extra http.Header, progress func()) (d Download, notModified bool, err error) {
	resp, err := c.open(ctx, url, extra)
	if err != nil {
		return Download{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return Download{}, true, nil
	}
	limit := c.Limit()
	if resp.ContentLength > limit {
		return Download{}, false, fmt.Errorf("answer of %d bytes is larger than the %d-byte limit", resp.ContentLength, limit)
	}
	h := sha256.New()
	var body io.Reader = io.LimitReader(resp.Body, limit+1)
	if progress != nil {
		body = &progressReader{r: body, onRead: progress}
	}
	n, err := io.Copy(io.MultiWriter(w, h), body)
	if err != nil {
		return Download{}, false, c.explain(ctx, fmt.Errorf("reading answer after %d bytes: %w", n, err))
	}
	if n > limit {
		return Download{}, false, fmt.Errorf("answer is larger than the %d-byte limit", limit)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return Download{}, false, fmt.Errorf("answer cut after %d of %d bytes", n, resp.ContentLength)
	}
	d = Download{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		d.LastModified = lm.UTC()
	}
	return d, false, nil
}
