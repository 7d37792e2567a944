package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/store"
)

// pageNames are the templates, one file each, rendered inside layout.html.
var pageNames = []string{"overview", "runs", "run", "changes", "diff", "targets", "configs", "config", "login", "error"}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"when":     when,
	"dur":      dur,
	"add":      func(a, b int) int { return a + b },
	"join":     strings.Join,
	"asns":     asnList,
	"origins":  asnList,
	"evidence": evidenceText,
	"diffline": diffClass,
	"waiting":  waiting,
	"more":     func(c *Changes) int { return c.Total - len(c.Prefixes) - len(c.ASNs) },
	"changes":  changesLink,
	"bytes":    byteSize,
	"failed":   failedSources,
	"peersum":  peerSum,
}

// when formats a time in UTC (the script shows local time on hover).
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func dur(r *store.Run) string {
	if r.End.IsZero() {
		return "-"
	}
	d := r.End.Sub(r.Start)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func asnList(ns []uint32) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "AS%d", n)
	}
	return b.String()
}

func evidenceText(e asn.Evidence) string {
	s := e.Source
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// diffClass styles a unified diff line.
func diffClass(line string) string {
	switch {
	case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
		return "dh"
	case strings.HasPrefix(line, "@@"):
		return "dk"
	case strings.HasPrefix(line, "+"):
		return "da"
	case strings.HasPrefix(line, "-"):
		return "dr"
	}
	return ""
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func failedSources(ss []store.SourceStatus) int {
	n := 0
	for _, s := range ss {
		if !s.OK {
			n++
		}
	}
	return n
}

// peerSum is the total of a peer's sent prefixes.
func peerSum(sent map[string]int) int {
	n := 0
	for _, v := range sent {
		n += v
	}
	return n
}
