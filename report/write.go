package report

import (
	"bufio"
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/asfence/asfence/asn"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// WriteText writes the report for a terminal.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "report of the snapshot of %s", r.SnapshotTime.UTC().Format(time.RFC3339))
	if r.Generator != "" {
		fmt.Fprintf(tw, " (%s)", r.Generator)
	}
	fmt.Fprintln(tw)
	for _, in := range r.Incomplete {
		fmt.Fprintf(tw, "INCOMPLETE: %s %s: %s\n", in.Source, in.Target, in.Error)
	}
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "\n== target %s: %d ASNs; attributed %s; blocked %s\n", t.Name, t.ASNs, spaceText(t.Attributed), spaceText(t.Blocked))
		fmt.Fprintln(tw, "\nspace by source\tkind\tprefixes\tIPv4 addresses\tIPv6 /48s\tonly this source (prefixes, IPv4, IPv6 /48s)")
		for _, s := range t.BySource {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d, %s, %s\n", s.Source, s.Kind, s.Prefixes, num(s.IPv4), num(s.IPv6), s.Only.Prefixes, num(s.Only.IPv4), num(s.Only.IPv6))
		}
		fmt.Fprintln(tw, "\nspace by kind\tprefixes\tIPv4 addresses\tIPv6 /48s")
		for _, k := range t.ByKind {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", k.Kind, k.Prefixes, num(k.IPv4), num(k.IPv6))
		}
		fmt.Fprintln(tw, "\nattested by\tprefixes\tIPv4 addresses\tIPv6 /48s")
		for _, a := range t.Agreement {
			fmt.Fprintf(tw, "%d kind(s)\t%d\t%s\t%s\n", a.Kinds, a.Prefixes, num(a.IPv4), num(a.IPv6))
		}
		if len(t.Overlaps) > 0 {
			fmt.Fprintln(tw, "\nsources agreeing\t\tIPv4 addresses in both\tIPv6 /48s in both")
			for _, o := range t.Overlaps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.A, o.B, num(o.IPv4), num(o.IPv6))
			}
		}
		writeList(tw, "prefixes attested by one source only", t.SingleSource)
		writeList(tw, "space attributed to the target but announced by others (upstreams)", t.Upstreams)
		writeList(tw, "cloud/hosting ranges (may host third parties)", t.CloudRanges)
		writeList(tw, "attested by a cloud/hosting range list alone", t.CloudOnly)
		if len(t.NameOnly) > 0 {
			fmt.Fprintln(tw, "\nname-only ASNs\tname\tsources\tin the origin filter")
			for _, a := range t.NameOnly {
				fmt.Fprintf(tw, "AS%d\t%s\t%s\t%v\n", a.ASN, a.Name, strings.Join(a.Sources, ", "), a.Filtered)
			}
		}
		if t.DropsTotal > 0 {
			fmt.Fprintf(tw, "\npolicy drops: %d\n", t.DropsTotal)
			for _, d := range t.DropCounts {
				fmt.Fprintf(tw, "  %s\t%d\n", d.Reason, d.Count)
			}
			for _, d := range t.Drops {
				what := d.Prefix
				if what == "" {
					what = fmt.Sprintf("AS%d", d.ASN)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", what, d.Reason, d.Detail)
			}
			if t.DropsTotal > len(t.Drops) {
				fmt.Fprintf(tw, "  (the first %d shown)\n", len(t.Drops))
			}
		}
		writeRows(tw, "\nlargest prefixes", t.Largest)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func writeList(w io.Writer, title string, l List) {
	if l.Total == 0 {
		fmt.Fprintf(w, "\n%s: none\n", title)
		return
	}
	head := fmt.Sprintf("\n%s: %d prefixes, %s IPv4 addresses, %s IPv6 /48s", title, l.Total, num(l.IPv4), num(l.IPv6))
	if l.Total > len(l.Rows) {
		head += fmt.Sprintf(" (the first %d shown)", len(l.Rows))
	}
	writeRows(w, head, l.Rows)
}

func writeRows(w io.Writer, title string, rows []Row) {
	fmt.Fprintln(w, title)
	fmt.Fprintln(w, "  prefix\torigins\tupstreams\tkinds\tsources\tblocked")
	for _, r := range rows {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%v\n", r.Prefix, asns(r.Origins), asns(r.Upstreams), kindList(r.Kinds), strings.Join(r.Sources, ", "), r.Blocked)
	}
}

func spaceText(s Space) string {
	return fmt.Sprintf("%d prefixes, %s IPv4 addresses, %s IPv6 /48s", s.Prefixes, num(s.IPv4), num(s.IPv6))
}

// num writes n with thousands separators.
func num(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func asns(as []uint32) string {
	if len(as) == 0 {
		return "-"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = "AS" + strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(s, " ")
}

func kindList(ks []asn.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

//go:embed report.html.tmpl
var htmlFS embed.FS

var page = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"num":   num,
	"asns":  asns,
	"kinds": kindList,
	"join":  strings.Join,
	"rfc3339": func(t time.Time) string {
		return t.UTC().Format(time.RFC3339)
	},
	"chart": chart,
	"legend": func(t Target) []asn.Kind {
		var ks []asn.Kind
		for _, k := range t.ByKind {
			ks = append(ks, k.Kind)
		}
		return ks
	},
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
}).ParseFS(htmlFS, "report.html.tmpl"))

// Bar is one bar of a chart.
type Bar struct {
	Label string
	Kind  asn.Kind
	Value uint64
	// Y is the bar's row position, Width its length in the chart's units.
	Y     int
	Width float64
}

// Chart is a horizontal bar chart of space by source.
type Chart struct {
	Title  string
	Unit   string
	Bars   []Bar
	Height int
}

// chart lays out the space by source of one family: each bar's width
// relative to the largest.
func chart(t Target, v6 bool) Chart {
	c := Chart{Title: "IPv4 addresses by source", Unit: "addresses"}
	if v6 {
		c.Title, c.Unit = "IPv6 /48s by source", "/48s"
	}
	var top uint64
	for _, s := range t.BySource {
		v := s.IPv4
		if v6 {
			v = s.IPv6
		}
		top = max(top, v)
	}
	for _, s := range t.BySource {
		v := s.IPv4
		if v6 {
			v = s.IPv6
		}
		if v == 0 {
			continue
		}
		c.Bars = append(c.Bars, Bar{Label: s.Source, Kind: s.Kind, Value: v, Width: float64(v) / float64(top) * 240})
	}
	slices.SortStableFunc(c.Bars, func(a, b Bar) int { return cmp.Compare(b.Value, a.Value) })
	for i := range c.Bars {
		c.Bars[i].Y = i * 22
	}
	c.Height = len(c.Bars)*22 + 4
	return c
}

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// inline SVG charts, no script, everything from the data escaped.
func (r *Report) WriteHTML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if err := page.Execute(bw, r); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
