package console

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

const (
	// configLinesPerPage lines of a vendor file per page.
	configLinesPerPage = 1000
	// headerScan bounds how much of a file is read to find its header.
	headerScan = 64 << 10
	// maxLineBytes bounds one line of a viewed file.
	maxLineBytes = 1 << 20
)

type configFile struct {
	Output
	Header []string
}

type configsPage struct {
	Files []configFile
}

func (c *Console) configs(w http.ResponseWriter, r *http.Request) {
	outs, err := c.b.Outputs(r.Context())
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	p := configsPage{}
	for _, o := range outs {
		cf := configFile{Output: o}
		if o.Error == "" {
			if cf.Header, err = c.header(r, o.File); err != nil {
				cf.Error = err.Error()
			}
		}
		p.Files = append(p.Files, cf)
	}
	c.render(w, r, http.StatusOK, "configs", "Configs", p)
}

func (c *Console) header(r *http.Request, file string) ([]string, error) {
	f, err := c.b.OpenOutput(r.Context(), file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return fileHeader(io.LimitReader(f, headerScan)), nil
}

// fileHeader returns the header comment every generated file starts with:
// its leading comment lines (# ! /* * */ styles), or the "header" member of
// a JSON file.
func fileHeader(r io.Reader) []string {
	br := bufio.NewReader(r)
	if b, err := br.Peek(1); err == nil && b[0] == '{' {
		return jsonHeader(br)
	}
	var out []string
	sc := bufio.NewScanner(br)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		trimmed := strings.TrimLeft(line, " \t")
		var rest string
		switch {
		case strings.HasPrefix(trimmed, "/*"):
			rest = trimmed[2:]
		case strings.HasPrefix(trimmed, "*/"):
			continue
		case strings.HasPrefix(trimmed, "*"), strings.HasPrefix(trimmed, "#"), strings.HasPrefix(trimmed, "!"):
			rest = trimmed[1:]
		default:
			return out
		}
		if rest = strings.TrimSpace(rest); rest != "" {
			out = append(out, rest)
		}
	}
	return out
}

// jsonHeader reads the top-level "header" string list of a JSON file
// without decoding the rest.
func jsonHeader(r io.Reader) []string {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil
		}
		if k == "header" {
			var h []string
			if dec.Decode(&h) != nil {
				return nil
			}
			return h
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil
		}
	}
	return nil
}

type configPage struct {
	Output
	Header []string
	Lines  []string
	Pager  pager
}

// output finds a configured file by name (nothing else can be opened).
func (c *Console) output(r *http.Request) (Output, error) {
	name := r.PathValue("file")
	outs, err := c.b.Outputs(r.Context())
	if err != nil {
		return Output{}, err
	}
	for _, o := range outs {
		if o.File == name {
			if o.Error != "" {
				return o, errors.New(o.Error)
			}
			return o, nil
		}
	}
	return Output{}, fmt.Errorf("no vendor file %q is configured (outputs.vendors)", name)
}

func (c *Console) config(w http.ResponseWriter, r *http.Request) {
	o, err := c.output(r)
	if err != nil {
		c.fail(w, r, http.StatusNotFound, err)
		return
	}
	offset, err := intParam(r, "offset", 0, 1<<30)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	f, err := c.b.OpenOutput(r.Context(), o.File)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	defer f.Close()
	p := configPage{Output: o}
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(headerScan)
	p.Header = fileHeader(bytes.NewReader(head))
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	n := 0
	for sc.Scan() {
		if n >= offset && n < offset+configLinesPerPage {
			p.Lines = append(p.Lines, sc.Text())
		}
		n++
	}
	if err := sc.Err(); err != nil {
		c.fail(w, r, http.StatusInternalServerError, fmt.Errorf("%s: %w", o.File, err))
		return
	}
	p.Pager = newPager(offset, configLinesPerPage, n, func(off int) string {
		return "/configs/" + url.PathEscape(o.File) + "?offset=" + strconv.Itoa(off)
	})
	c.render(w, r, http.StatusOK, "config", o.File, p)
}

func (c *Console) download(w http.ResponseWriter, r *http.Request) {
	o, err := c.output(r)
	if err != nil {
		c.fail(w, r, http.StatusNotFound, err)
		return
	}
	f, err := c.b.OpenOutput(r.Context(), o.File)
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	ct := "text/plain; charset=utf-8"
	if path.Ext(o.File) == ".json" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", path.Base(o.File)))
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, o.File, st.ModTime(), f)
}
