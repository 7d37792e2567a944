package tables

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
)

// Compression formats, recognised by their magic bytes (not the file name:
// downloads and caches do not keep names).
var (
	gzipMagic  = []byte{0x1f, 0x8b}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// decompress returns a reader of the decompressed data and the name of the
// compression ("" for plain data).
func decompress(r io.Reader) (io.Reader, string, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(len(xzMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "gzip", fmt.Errorf("gzip: %w", err)
		}
		return zr, "gzip", nil
	case bytes.HasPrefix(head, bzip2Magic):
		return bzip2.NewReader(br), "bzip2", nil
	case bytes.HasPrefix(head, xzMagic):
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, "xz", fmt.Errorf("xz: %w", err)
		}
		return zr, "xz", nil
	}
	return br, "", nil
}

// countingReader counts the bytes read through it (the offset that errors
// name) and keeps the stream's own error: io.ReadFull reports a clean end
// in the middle of a record and a damaged stream alike as
// io.ErrUnexpectedEOF.
type countingReader struct {
	r   io.Reader
	n   int64
	err error // the last error other than io.EOF
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}

// cause returns the stream's own error, if it had one, else err.
func (c *countingReader) cause(err error) error {
	if c.err != nil {
		return c.err
	}
	return err
}

// streamError explains a read error of the (decompressed) stream: a file
// cut short reads as an unexpected end.
func streamError(err error, compression string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) && compression != "" {
		return fmt.Errorf("%s data ends early (file cut short?): %w", compression, err)
	}
	if compression != "" {
		return fmt.Errorf("%s: %w", compression, err)
	}
	return err
}
