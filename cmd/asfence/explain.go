package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/asfence/asfence/explain"
)

func (a *app) explainCmd() *cobra.Command {
	var f inputFlags
	var format string
	c := &cobra.Command{
		Use:   "explain ADDR|PREFIX|ASN",
		Short: "Say whether an address, prefix or ASN is blocked, by what and why",
		Long: `Say whether an address, a prefix or an ASN is blocked: by which target and
which list entries (the route-filter entry and the address-filter entry that
hold it), every source's statement about it with its kind (including where
they disagree: a routing table showing another AS announcing space a
registration gives the target), target prefixes inside a queried prefix, and
what the policy chose not to block there and why.

The snapshot comes from the registries of the config (or with --offline the
embedded one, or --snapshot F), through the config's policy, as for generate.
Exit status: 0 whether or not it is blocked, 1 failure (all sources failed),
2 bad usage or config.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usagef("--format must be text or json, not %q", format)
			}
			if _, _, err := explain.Parse(args[0]); err != nil {
				return usageError{err}
			}
			s, cfg, err := a.snapshot(cmd.Context(), &f)
			if err != nil {
				return err
			}
			in := cfg.PolicyRules.Apply(s)
			r, err := explain.New(s, in).WithPolicy(cfg.PolicyRules).Query(args[0])
			if err != nil {
				return usageError{err}
			}
			if format == "json" {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return writeExplanation(a.stdout, r)
		},
	}
	f.register(c)
	c.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return c
}

// writeExplanation prints an answer for a person.
func writeExplanation(w io.Writer, r *explain.Result) error {
	var b strings.Builder
	verdict := "not blocked"
	switch {
	case r.Blocked && r.ASN != 0:
		verdict = "BLOCKED (origin AS-path filter)"
	case r.Blocked:
		verdict = "BLOCKED"
	case r.PartlyBlocked:
		verdict = "PARTLY BLOCKED"
	}
	fmt.Fprintf(&b, "%s: %s\n", r.Query, verdict)
	for _, m := range r.ASNs {
		name := m.Name
		if m.NameOnly {
			name += " (by name only)"
		}
		state := "in the origin AS-path filter"
		if !m.Filtered {
			state = "not in the origin AS-path filter"
		}
		fmt.Fprintf(&b, "\n  target %s: AS%d %s, %s; originates %d accepted prefix(es)\n", m.Target, m.ASN, name, state, m.Prefixes)
		writeStatements(&b, m.Evidence)
	}
	if r.ASN != 0 && len(r.ASNs) == 0 {
		b.WriteString("\n  no target has this ASN\n")
	}
	for _, m := range r.Matches {
		writeMatch(&b, m)
	}
	if r.ASN == 0 && r.RouteRejected {
		b.WriteString("\n  a route for exactly it is rejected by the route filters\n")
	}
	if r.InsideTotal > 0 {
		fmt.Fprintf(&b, "\n  %d target prefix(es) lie inside it", r.InsideTotal)
		if r.InsideTotal > len(r.Inside) {
			fmt.Fprintf(&b, " (the first %d shown)", len(r.Inside))
		}
		b.WriteString(":\n")
		for _, m := range r.Inside {
			writeMatch(&b, m)
		}
	}
	if r.ASN == 0 && len(r.Matches) == 0 && r.InsideTotal == 0 {
		b.WriteString("\n  no target prefix contains it or lies inside it\n")
	}
	if len(r.Dropped) > 0 {
		b.WriteString("\n  the policy chose not to block:\n")
		for _, d := range r.Dropped {
			what := d.Prefix
			if what == "" {
				what = fmt.Sprintf("AS%d", d.ASN)
			}
			fmt.Fprintf(&b, "    %s %s: %s", d.Target, what, d.Reason)
			if d.Detail != "" {
				fmt.Fprintf(&b, " (%s)", d.Detail)
			}
			b.WriteString("\n")
			if len(d.Evidence) > 0 {
				writeStatementsIndent(&b, d.Evidence, "      ")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeMatch(b *strings.Builder, m explain.Match) {
	fmt.Fprintf(b, "\n  target %s: %s (%s)", m.Target, m.Prefix, m.Relation)
	if len(m.Origins) > 0 {
		fmt.Fprintf(b, ", origin %s", asnList(m.Origins))
	} else {
		b.WriteString(", no origin given")
	}
	if len(m.Upstreams) > 0 {
		fmt.Fprintf(b, ", announced by upstream %s", asnList(m.Upstreams))
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "    list entries: route filter %s; address filter %s\n", orNone(m.Entries.RouteFilter), orNone(m.Entries.Cover))
	kinds := make([]string, len(m.Kinds))
	for i, k := range m.Kinds {
		kinds[i] = string(k)
	}
	fmt.Fprintf(b, "    attested by %d kind(s) of source (%s): %s\n", len(m.Kinds), strings.Join(kinds, ", "), strings.Join(m.Sources, ", "))
	for _, d := range m.Disagreements {
		fmt.Fprintf(b, "    disagreement: %s\n", d)
	}
	writeStatements(b, m.Evidence)
}

func writeStatements(b *strings.Builder, st []explain.Statement) {
	writeStatementsIndent(b, st, "    ")
}

func writeStatementsIndent(b *strings.Builder, st []explain.Statement, indent string) {
	for _, s := range st {
		fmt.Fprintf(b, "%s%-8s %s (%s, %s)", indent, s.Role, s.Source, s.Kind, s.Seen.Format("2006-01-02"))
		if s.Detail != "" {
			fmt.Fprintf(b, ": %s", s.Detail)
		}
		b.WriteString("\n")
	}
}

func asnList(as []uint32) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = fmt.Sprintf("AS%d", a)
	}
	return strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
