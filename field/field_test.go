package field

import (
	"errors"
	"fmt"
	"testing"
)

func TestPath(t *testing.T) {
	for _, c := range []struct {
		parts []any
		want  string
	}{
		{[]any{"neighbors", 0, "asn"}, "neighbors[0].asn"},
		{[]any{"", "asn"}, "asn"},
		{[]any{"targets", "[2].id"}, "targets[2].id"},
		{[]any{"targets", ""}, "targets"},
		{[]any{0, "name"}, "[0].name"},
		{[]any{"a", uint32(7)}, "a.7"},
		{nil, ""},
	} {
		if got := Path(c.parts...); got != c.want {
			t.Errorf("Path(%v) = %q, want %q", c.parts, got, c.want)
		}
	}
}

func TestListErrAndNesting(t *testing.T) {
	var l List
	if l.Err() != nil {
		t.Fatal("empty list is an error")
	}
	l.Add("asn", "missing or %d", 0)
	l.Add("", "no neighbors")
	var outer List
	outer.Append("bgp", l.Err())
	outer.Append("targets[1]", errors.New("plain"))
	outer.Append("x", nil)
	want := List{{"bgp.asn", "missing or 0"}, {"bgp", "no neighbors"}, {"targets[1]", "plain"}}
	if fmt.Sprint(outer) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", outer, want)
	}
	if got := outer.Error(); got != "bgp.asn: missing or 0; bgp: no neighbors; targets[1]: plain" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestErrorsUnwraps(t *testing.T) {
	a := List{{"a", "x"}}
	b := Error{"b", "y"}
	joined := errors.Join(a, fmt.Errorf("context: %w", b), errors.New("z"))
	got := Errors(joined)
	want := List{{"a", "x"}, {"b", "y"}, {"", "z"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if Errors(nil) != nil {
		t.Fatal("nil error has field errors")
	}
	var l List
	if !errors.As(fmt.Errorf("bgp: %w", a), &l) || len(l) != 1 {
		t.Fatal("errors.As does not find a wrapped List")
	}
}
