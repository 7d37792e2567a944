package irr

import (
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestReadAnswers(t *testing.T) {
	r := newAnswerReader(strings.NewReader("A12\nAS1 AS-FOO\n\nC\nC\nD\nE\nF One or more selected sources are unavailable.\nF\nA5\nAS1\r\nC\r\n"))
	want := []answer{
		{kind: 'A', data: []byte("AS1 AS-FOO\n\n")},
		{kind: 'C'}, {kind: 'D'}, {kind: 'E'},
		{kind: 'F', msg: "One or more selected sources are unavailable."},
		{kind: 'F'},
		{kind: 'A', data: []byte("AS1\r\n")},
	}
	for i, w := range want {
		a, err := r.read()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if a.kind != w.kind || string(a.data) != string(w.data) || a.msg != w.msg {
			t.Errorf("answer %d: %c %q %q, want %c %q %q", i, a.kind, a.data, a.msg, w.kind, w.data, w.msg)
		}
	}
	if _, err := r.read(); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
}

func TestReadAnswerErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		proto    bool // a *ProtocolError (garbage), else a cut stream
		want     string
	}{
		{"http", "HTTP/1.1 400 Bad Request\r\n", true, "not an IRRd answer"},
		{"empty line", "\n", true, "empty line"},
		{"bad length", "A12x\nfoo\nC\n", true, "bad answer length"},
		{"no length", "A\nC\n", true, "bad answer length"},
		{"signed length", "A+3\nab\nC\n", true, "bad answer length"},
		{"huge", "A999999999999\n", true, "larger than"},
		{"no C", "A4\nAS1\nD\n", true, "want C after a 4 byte answer"},
		{"C with text", "Cfoo\n", true, "unexpected answer"},
		{"F without space", "Fail\n", true, "unexpected answer"},
		{"long line", strings.Repeat("x", 70000), true, "not an IRRd answer"},
		{"cut data", "A100\nAS1 AS2", false, "closed mid-answer (got 7 of 100 bytes)"},
		{"cut before C", "A4\nAS1\n", false, "closed before the end of an answer"},
		{"cut status", "A4", false, "inside an answer line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newAnswerReader(strings.NewReader(tc.in)).read()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			var pe *ProtocolError
			if errors.As(err, &pe) != tc.proto {
				t.Errorf("ProtocolError=%v, want %v (%v)", !tc.proto, tc.proto, err)
			}
			if !tc.proto && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("cut stream is not io.ErrUnexpectedEOF: %v", err)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	for _, s := range []string{"0.0.0.0/0", "192.0.2.0/24", "255.255.255.255/32", "10.0.0.0/8", "2001:db8::/32", "::/0"} {
		p, err := parsePrefix([]byte(s))
		if err != nil || p != netip.MustParsePrefix(s) {
			t.Errorf("parsePrefix(%q) = %v, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "192.0.2.1/24", "192.0.2.0/33", "192.0.2.0", "256.0.0.0/8", "01.0.0.0/8", "1.2.3.4.5/32",
		"1.2.3/24", "192.0.2.0/024", "192.0.2.0/", "2001:db8::1/32", "AS1", "::ffff:192.0.2.0/120", "fe80::%eth0/64", "1..2.3/8"} {
		if p, err := parsePrefix([]byte(s)); err == nil {
			t.Errorf("parsePrefix(%q) accepted: %v", s, p)
		}
	}
}

// FuzzReadAnswers: no byte stream makes the answer reader panic or return
// a data answer whose length differs from the one announced.
func FuzzReadAnswers(f *testing.F) {
	for _, s := range []string{
		"A13\nAS1 AS-FOO\n\nC\n",
		"C\nD\nE\nF error\n",
		"A4\nAS1\nD\n",
		"A100\nAS1",
		"HTTP/1.1 400 Bad Request\r\n\r\n",
		"A3\n1.\nC\nA22\n192.0.2.0/24 10.0.0.0/8\nC\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newAnswerReader(strings.NewReader(string(data)))
		r.max = 1 << 16
		for range 100 {
			a, err := r.read()
			if err != nil {
				var pe *ProtocolError
				if err != io.EOF && !errors.As(err, &pe) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error type: %v", err)
				}
				return
			}
			switch a.kind {
			case 'A', 'C', 'D', 'E', 'F':
			default:
				t.Fatalf("answer kind %q", a.kind)
			}
			if a.kind == 'A' {
				_ = eachField(a.data, func(b []byte) error {
					if p, err := parsePrefix(b); err == nil && (!p.IsValid() || p.Masked() != p) {
						t.Fatalf("parsePrefix(%q) = %v", b, p)
					}
					return nil
				})
			}
		}
	})
}
