package tables

import (
	"errors"
	"fmt"
	"io"
)

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
