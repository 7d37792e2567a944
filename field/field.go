// Package field reports invalid values by where they are: each Error names
// the field that is wrong by its path relative to the value that was
// checked ("neighbors[0].asn"), so that the caller, which knows where that
// value came from (a config file and its lines, an API request), can say
// so in its own terms.
package field

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is one invalid field.
type Error struct {
	// Path names the field: keys joined by '.', list indexes in brackets
	// ("neighbors[0].asn"). "" is the checked value itself.
	Path string
	// Msg says what is wrong, in the words of the person who wrote the
	// value ("must be 1-4095").
	Msg string
}

func (e Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// List is what a validation found wrong, in the order found; the zero value
// is ready to use. Validators return it through List.Err, so that "nothing
// wrong" is a nil error.
type List []Error

// Add records a problem at path.
func (l *List) Add(path, format string, args ...any) {
	*l = append(*l, Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Append records the problems of err (see Errors) under prefix: a problem
// at "asn" appended under "neighbors[0]" is at "neighbors[0].asn". A nil
// err adds nothing.
func (l *List) Append(prefix string, err error) {
	for _, e := range Errors(err) {
		*l = append(*l, Error{Path: Path(prefix, e.Path), Msg: e.Msg})
	}
}

// Err returns the list as an error, or nil when it is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l List) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// Errors returns the field errors that err holds: a List, an Error, errors
// joined with errors.Join, or one of those wrapped. Any other error is one
// Error about the checked value itself (Path ""). A nil err has none.
func Errors(err error) List {
	if err == nil {
		return nil
	}
	switch e := err.(type) {
	case List:
		return e
	case Error:
		return List{e}
	case *Error:
		return List{*e}
	case interface{ Unwrap() []error }:
		var out List
		for _, x := range e.Unwrap() {
			out = append(out, Errors(x)...)
		}
		return out
	}
	var l List
	if errors.As(err, &l) {
		return l
	}
	var fe Error
	if errors.As(err, &fe) {
		return List{fe}
	}
	return List{{Msg: err.Error()}}
}

// Path joins keys (strings) and list indexes (ints) into a path:
// Path("neighbors", 0, "asn") is "neighbors[0].asn". Empty keys are left
// out, so Path("", "asn") is "asn"; a string part that is itself a path
// ("[2].id") is joined as it is.
func Path(parts ...any) string {
	var b strings.Builder
	for _, x := range parts {
		var s string
		switch v := x.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(v) + "]")
			continue
		case string:
			s = v
		default:
			s = fmt.Sprint(v)
		}
		if s == "" {
			continue
		}
		if b.Len() > 0 && s[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}
