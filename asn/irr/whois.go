package irr

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxAnswerBytes bounds one A-answer, so a wrong or hostile server cannot
// exhaust memory. IRRd's largest real answers (!a on big AS-SETs) are tens
// of MB.
const MaxAnswerBytes = 256 << 20

// answer is one IRRd whois response:
//
//	A<length>\n<data>C\n   data (length counts the data's bytes incl. its final newline)
//	C\n                    success, no data
//	D\n                    key not found
//	E\n                    multiple copies of a key
//	F <message>\n          error
type answer struct {
	kind byte
	// data is the A-answer's payload; valid until the next read.
	data []byte
	// msg is the F-answer's message.
	msg string
}

// ProtocolError is an answer that does not follow the IRRd protocol
// (garbage, bad framing). It is never retried.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return e.Msg }

// answerReader parses IRRd whois answers from a stream.
type answerReader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

func newAnswerReader(r io.Reader) *answerReader {
	return &answerReader{br: bufio.NewReaderSize(r, 64<<10), max: MaxAnswerBytes}
}

// read returns the next answer. Errors: *ProtocolError for garbage and
// framing, io.ErrUnexpectedEOF (wrapped) when the stream ends inside an
// answer, io.EOF when it ends between answers, or the reader's error.
func (r *answerReader) read() (answer, error) {
	line, err := r.statusLine()
	if err != nil {
		return answer{}, err
	}
	switch line[0] {
	case 'A':
		n, perr := strconv.ParseUint(string(line[1:]), 10, 64)
		if perr != nil || len(line) < 2 || line[1] == '+' {
			return answer{}, &ProtocolError{fmt.Sprintf("bad answer length in %q", clip(line))}
		}
		if n > uint64(r.max) {
			return answer{}, &ProtocolError{fmt.Sprintf("answer of %d bytes is larger than the %d byte limit", n, r.max)}
		}
		if cap(r.buf) < int(n) {
			r.buf = make([]byte, n)
		}
		r.buf = r.buf[:n]
		if got, err := io.ReadFull(r.br, r.buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return answer{}, fmt.Errorf("connection closed mid-answer (got %d of %d bytes): %w", got, n, io.ErrUnexpectedEOF)
			}
			return answer{}, err
		}
		end, err := r.statusLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return answer{}, fmt.Errorf("connection closed before the end of an answer: %w", io.ErrUnexpectedEOF)
			}
			return answer{}, err
		}
		if len(end) != 1 || end[0] != 'C' {
			return answer{}, &ProtocolError{fmt.Sprintf("want C after a %d byte answer, got %q", n, clip(end))}
		}
		return answer{kind: 'A', data: r.buf}, nil
	case 'C', 'D', 'E':
		if len(line) != 1 {
			return answer{}, &ProtocolError{fmt.Sprintf("unexpected answer %q", clip(line))}
		}
		return answer{kind: line[0]}, nil
	case 'F':
		if len(line) > 1 && line[1] != ' ' {
			return answer{}, &ProtocolError{fmt.Sprintf("unexpected answer %q", clip(line))}
		}
		msg := string(line[1:])
		if len(msg) > 0 {
			msg = msg[1:]
		}
		return answer{kind: 'F', msg: msg}, nil
	}
	return answer{}, &ProtocolError{fmt.Sprintf("not an IRRd answer: %q", clip(line))}
}

// statusLine reads one status line without its line end.
func (r *answerReader) statusLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, &ProtocolError{fmt.Sprintf("not an IRRd answer: %q", clip(line))}
	case err == io.EOF && len(line) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, fmt.Errorf("connection closed inside an answer line %q: %w", clip(line), io.ErrUnexpectedEOF)
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return nil, &ProtocolError{"not an IRRd answer: empty line"}
	}
	return line, nil
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
