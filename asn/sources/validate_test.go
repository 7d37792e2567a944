package sources

import (
	"errors"
	"fmt"
	"testing"

	"github.com/asfence/asfence/field"
)

// Problems are field errors with paths relative to the sources block.
func TestValidatePaths(t *testing.T) {
	c := &Config{
		IRR:   &IRRConfig{Servers: []IRRServer{{Address: "whois.radb.net:43"}, {Address: "", Sources: []string{"RADB", "A B"}}}},
		RPKI:  []RPKIConfig{{Path: "vrps.json"}, {URL: "ftp://x"}},
		Files: []FileConfig{{Format: "cidr", Path: "a.txt", Target: "nosuch"}},
	}
	err := Validate(c, []string{"tencent"})
	var l field.List
	if !errors.As(err, &l) {
		t.Fatalf("want a field.List, got %v", err)
	}
	want := field.List{
		{Path: "irr.servers[1].address", Msg: "missing"},
		{Path: "irr.servers[1].sources[1]", Msg: `invalid IRR source name "A B"`},
		{Path: "rpki[1].url", Msg: `invalid URL "ftp://x" (want http:// or https://)`},
		{Path: "files[0].target", Msg: `unknown target "nosuch"`},
	}
	if fmt.Sprint(l) != fmt.Sprint(want) {
		t.Fatalf("got\n%v\nwant\n%v", l, want)
	}
	if err := Validate(&Config{Files: []FileConfig{{Format: "cidr", Path: "a", Target: "tencent"}}}, []string{"tencent"}); err != nil {
		t.Fatalf("valid block: %v", err)
	}
}
