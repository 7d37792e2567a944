package filters

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"text/template"
	"text/template/parse"
)

// Compiled ranges. text/template walks a range body once per element,
// looking every field up by reflection: about a microsecond per entry,
// seconds for a list of a million. The templates stay the one place that
// holds vendor syntax; after a template is parsed, each {{range}} whose
// body is simple enough (literal text, the element's fields, variables of
// the enclosing scope, {{if}} / {{if not}} / {{else}} on an element
// field, {{template "name" .}} of such a body) is compiled to a list of
// operations, and the parse tree is rewritten (as html/template rewrites
// its trees) to
//
//	{{if _fastList K LIST}}{{if _fastRange K LIST VARS...}}{{else}}RANGE{{end}}{{else}}RANGE{{end}}
//
// _fastList reports whether LIST is a non-empty list of Entry or
// AddrEntry with every field the body uses; _fastRange writes the body for
// each element to the output, with the bytes text/template would write,
// and reports false (having written nothing) when a variable's value is
// not one it prints exactly like text/template; RANGE is the original
// range, which handles every other case (an empty list and its {{else}},
// another element type). Everything else in the template runs as before.

// elemField is an element field a compiled body uses.
type elemField uint8

const (
	fStr elemField = iota
	fNet
	fAddr
	fLen
	fGe
	fLe
	fIsExact
	fGeAbove
	fLeAbove
	fN
	fLast
	fPrefix
	fWildcard
	fHost
)

const (
	entryFields = 1<<fStr | 1<<fNet | 1<<fAddr | 1<<fLen | 1<<fGe | 1<<fLe | 1<<fIsExact |
		1<<fGeAbove | 1<<fLeAbove | 1<<fN | 1<<fLast | 1<<fPrefix
	addrFields = 1<<fPrefix | 1<<fN | 1<<fNet | 1<<fAddr | 1<<fLen | 1<<fWildcard | 1<<fHost | 1<<fLast
)

func fieldByName(name string) (elemField, bool) {
	for f, n := range [...]string{fStr: "Str", fNet: "Net", fAddr: "Addr", fLen: "Len", fGe: "Ge", fLe: "Le",
		fIsExact: "IsExact", fGeAbove: "GeAbove", fLeAbove: "LeAbove", fN: "N", fLast: "Last", fPrefix: "Prefix",
		fWildcard: "Wildcard", fHost: "Host"} {
		if n == name {
			return elemField(f), true
		}
	}
	return 0, false
}

type opKind uint8

const (
	opText  opKind = iota // write text
	opField               // write the element's field
	opArg                 // write an outer variable
	opIf                  // then if the field is true (false with not), else els
)

type op struct {
	kind      opKind
	text      string
	field     elemField
	arg       int
	not       bool
	then, els []op
}

// fastBody is one compiled range body.
type fastBody struct {
	ops    []op
	fields uint32 // fields used (a bit per field)
	vars   []*parse.VariableNode
}

// fastRanges holds a template's compiled ranges and the writer the
// template executes into.
type fastRanges struct {
	bodies []*fastBody
	w      *bufio.Writer
	buf    []byte
}

// errNotCompiled: a body uses something the compiler does not handle.
var errNotCompiled = errors.New("not compiled")

// compile rewrites the ranges of every template in t that it can compile
// and registers the functions the rewritten trees call.
func (fr *fastRanges) compile(t *template.Template) {
	for _, tt := range t.Templates() {
		if tt.Tree != nil && tt.Tree.Root != nil {
			fr.rewriteList(t, tt.Tree.Root)
		}
	}
	t.Funcs(template.FuncMap{"_fastList": fr.list, "_fastRange": fr.render})
}

// writerFuncs are the template functions that write to the output
// themselves (and return ""): lines and objects write a list of the json
// document as its methods Lines and Objects format it, element by
// element, instead of as one string of the whole list.
func (fr *fastRanges) writerFuncs() template.FuncMap {
	list := func(objects bool) func(l any, indent int) (string, error) {
		return func(l any, indent int) (string, error) {
			jl, ok := l.(jsonWriterList)
			if !ok {
				return "", fmt.Errorf("%T is not a list of the json document", l)
			}
			if fr.w == nil {
				return jl.text(indent, objects)
			}
			return "", jl.writeList(fr.w, indent, objects)
		}
	}
	return template.FuncMap{"lines": list(false), "objects": list(true)}
}

func (fr *fastRanges) rewriteList(t *template.Template, l *parse.ListNode) {
	if l == nil {
		return
	}
	for i, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.RangeNode:
			if b, err := compileBody(t, n); err == nil {
				l.Nodes[i] = fr.replacement(n, b)
				continue
			}
			fr.rewriteList(t, n.List)
			fr.rewriteList(t, n.ElseList)
		case *parse.IfNode:
			fr.rewriteList(t, n.List)
			fr.rewriteList(t, n.ElseList)
		case *parse.WithNode:
			fr.rewriteList(t, n.List)
			fr.rewriteList(t, n.ElseList)
		case *parse.ListNode:
			fr.rewriteList(t, n)
		}
	}
}

// replacement is the tree that replaces a compiled range (see the top of
// the file).
func (fr *fastRanges) replacement(rn *parse.RangeNode, b *fastBody) parse.Node {
	k := len(fr.bodies)
	fr.bodies = append(fr.bodies, b)
	call := func(name string, withVars bool) *parse.PipeNode {
		args := []parse.Node{
			parse.NewIdentifier(name).SetTree(nil).SetPos(rn.Pos),
			&parse.NumberNode{NodeType: parse.NodeNumber, Pos: rn.Pos, IsInt: true, Int64: int64(k), Text: strconv.Itoa(k)},
			rn.Pipe.CopyPipe(),
		}
		if withVars {
			for _, v := range b.vars {
				args = append(args, v.Copy())
			}
		}
		return &parse.PipeNode{NodeType: parse.NodePipe, Pos: rn.Pos, Line: rn.Line,
			Cmds: []*parse.CommandNode{{NodeType: parse.NodeCommand, Pos: rn.Pos, Args: args}}}
	}
	list := func(nodes ...parse.Node) *parse.ListNode {
		return &parse.ListNode{NodeType: parse.NodeList, Pos: rn.Pos, Nodes: nodes}
	}
	ifNode := func(pipe *parse.PipeNode, then, els *parse.ListNode) *parse.IfNode {
		return &parse.IfNode{BranchNode: parse.BranchNode{NodeType: parse.NodeIf, Pos: rn.Pos, Line: rn.Line,
			Pipe: pipe, List: then, ElseList: els}}
	}
	inner := ifNode(call("_fastRange", true), list(), list(rn.Copy()))
	return ifNode(call("_fastList", false), list(inner), list(rn.Copy()))
}

// compileBody compiles a range's body, or fails with errNotCompiled.
func compileBody(t *template.Template, rn *parse.RangeNode) (*fastBody, error) {
	if rn.Pipe == nil || len(rn.Pipe.Decl) > 0 || rn.List == nil {
		return nil, errNotCompiled
	}
	b := &fastBody{}
	ops, err := b.compile(t, rn.List, 0, false)
	if err != nil {
		return nil, err
	}
	b.ops = ops
	return b, nil
}

// compile compiles a list of nodes; inSub: inside a {{template}}, whose
// variables are its own, not the range's scope.
func (b *fastBody) compile(t *template.Template, l *parse.ListNode, depth int, inSub bool) ([]op, error) {
	if l == nil {
		return nil, nil
	}
	if depth > 8 {
		return nil, errNotCompiled
	}
	var ops []op
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			ops = append(ops, op{kind: opText, text: string(n.Text)})
		case *parse.CommentNode:
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
				return nil, errNotCompiled
			}
			switch a := n.Pipe.Cmds[0].Args[0].(type) {
			case *parse.FieldNode:
				f, err := b.field(a)
				if err != nil {
					return nil, err
				}
				ops = append(ops, op{kind: opField, field: f})
			case *parse.VariableNode:
				if inSub {
					return nil, errNotCompiled
				}
				ops = append(ops, op{kind: opArg, arg: b.variable(a)})
			default:
				return nil, errNotCompiled
			}
		case *parse.IfNode:
			if len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 {
				return nil, errNotCompiled
			}
			o := op{kind: opIf}
			args := n.Pipe.Cmds[0].Args
			if len(args) == 2 {
				if id, ok := args[0].(*parse.IdentifierNode); !ok || id.Ident != "not" {
					return nil, errNotCompiled
				}
				o.not, args = true, args[1:]
			}
			fn, ok := args[0].(*parse.FieldNode)
			if len(args) != 1 || !ok {
				return nil, errNotCompiled
			}
			var err error
			if o.field, err = b.field(fn); err != nil {
				return nil, err
			}
			if o.then, err = b.compile(t, n.List, depth+1, inSub); err != nil {
				return nil, err
			}
			if o.els, err = b.compile(t, n.ElseList, depth+1, inSub); err != nil {
				return nil, err
			}
			ops = append(ops, o)
		case *parse.TemplateNode:
			if n.Pipe == nil || len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
				return nil, errNotCompiled
			}
			if _, ok := n.Pipe.Cmds[0].Args[0].(*parse.DotNode); !ok {
				return nil, errNotCompiled
			}
			sub := t.Lookup(n.Name)
			if sub == nil || sub.Tree == nil {
				return nil, errNotCompiled
			}
			more, err := b.compile(t, sub.Tree.Root, depth+1, true)
			if err != nil {
				return nil, err
			}
			ops = append(ops, more...)
		default:
			return nil, errNotCompiled
		}
	}
	return ops, nil
}

func (b *fastBody) field(n *parse.FieldNode) (elemField, error) {
	if len(n.Ident) != 1 {
		return 0, errNotCompiled
	}
	f, ok := fieldByName(n.Ident[0])
	if !ok {
		return 0, errNotCompiled
	}
	b.fields |= 1 << f
	return f, nil
}

// variable returns the argument index of an outer variable reference.
func (b *fastBody) variable(n *parse.VariableNode) int {
	for i, v := range b.vars {
		if v.String() == n.String() {
			return i
		}
	}
	b.vars = append(b.vars, n)
	return len(b.vars) - 1
}

// fastList is a list a compiled body can walk.
type fastList interface {
	len() int
	fields() uint32
	appendField(b []byte, i int, f elemField) []byte
	truth(i int, f elemField) bool
}

func asFastList(v any) fastList {
	switch v := v.(type) {
	case []Entry:
		if len(v) > 0 && len(v) == len(v[0].l.rs) {
			return v[0].l
		}
	case []AddrEntry:
		if len(v) > 0 && len(v) == len(v[0].l.ps) {
			return v[0].l
		}
	}
	return nil
}

// list is _fastList: whether the compiled body k can render v.
func (fr *fastRanges) list(k int, v any) bool {
	l := asFastList(v)
	return l != nil && k < len(fr.bodies) && fr.bodies[k].fields&^l.fields() == 0
}

// render is _fastRange: it writes body k for every element of v, or
// reports false without writing when a variable would print differently.
func (fr *fastRanges) render(k int, v any, vars ...any) (bool, error) {
	if !fr.list(k, v) || fr.w == nil {
		return false, nil
	}
	l, b := asFastList(v), fr.bodies[k]
	args := make([]string, len(vars))
	for i, x := range vars {
		s, ok := printable(x)
		if !ok {
			return false, nil
		}
		args[i] = s
	}
	buf := fr.buf[:0]
	for i := range l.len() {
		buf = runOps(buf, b.ops, l, i, args)
		if len(buf) >= 32<<10 {
			if _, err := fr.w.Write(buf); err != nil {
				return false, err
			}
			buf = buf[:0]
		}
	}
	_, err := fr.w.Write(buf)
	fr.buf = buf[:0]
	return err == nil, err
}

func runOps(buf []byte, ops []op, l fastList, i int, args []string) []byte {
	for j := range ops {
		o := &ops[j]
		switch o.kind {
		case opText:
			buf = append(buf, o.text...)
		case opField:
			buf = l.appendField(buf, i, o.field)
		case opArg:
			buf = append(buf, args[o.arg]...)
		case opIf:
			if l.truth(i, o.field) != o.not {
				buf = runOps(buf, o.then, l, i, args)
			} else {
				buf = runOps(buf, o.els, l, i, args)
			}
		}
	}
	return buf
}

// printable is how text/template prints a variable's value, for the
// values whose printing is plain fmt.Sprint (strings, numbers, booleans,
// and values whose own type has a String method).
func printable(x any) (string, bool) {
	switch x := x.(type) {
	case fmt.Stringer, error:
		return fmt.Sprint(x), true
	case nil:
		return "", false
	}
	switch reflect.ValueOf(x).Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return fmt.Sprint(x), true
	}
	return "", false
}

func (l *rangeList) len() int       { return len(l.rs) }
func (l *rangeList) fields() uint32 { return entryFields }

func (l *rangeList) appendField(b []byte, i int, f elemField) []byte {
	r := &l.rs[i]
	switch f {
	case fStr:
		return appendRangeStr(b, *r)
	case fNet:
		return r.Prefix.AppendTo(b)
	case fAddr:
		return r.Prefix.Addr().AppendTo(b)
	case fLen:
		return strconv.AppendInt(b, int64(r.Prefix.Bits()), 10)
	case fGe:
		return strconv.AppendInt(b, int64(r.Ge), 10)
	case fLe:
		return strconv.AppendInt(b, int64(r.Le), 10)
	case fN:
		return strconv.AppendInt(b, int64(i+1), 10)
	case fPrefix:
		return r.Prefix.AppendTo(b)
	}
	return strconv.AppendBool(b, l.truth(i, f))
}

func (l *rangeList) truth(i int, f elemField) bool {
	r := &l.rs[i]
	switch f {
	case fIsExact:
		return r.Exact()
	case fGeAbove:
		return r.Ge > r.Prefix.Bits()
	case fLeAbove:
		return r.Le > r.Prefix.Bits()
	case fLast:
		return i == len(l.rs)-1
	case fLen:
		return r.Prefix.Bits() != 0
	case fGe:
		return r.Ge != 0
	case fLe:
		return r.Le != 0
	}
	return true // N >= 1, non-empty text, a struct
}

func (l *prefixList) len() int       { return len(l.ps) }
func (l *prefixList) fields() uint32 { return addrFields }

func (l *prefixList) appendField(b []byte, i int, f elemField) []byte {
	p := l.ps[i]
	switch f {
	case fNet, fPrefix:
		return p.AppendTo(b)
	case fAddr:
		return p.Addr().AppendTo(b)
	case fLen:
		return strconv.AppendInt(b, int64(p.Bits()), 10)
	case fN:
		return strconv.AppendInt(b, int64(i+1), 10)
	case fWildcard:
		return appendWildcard(b, p)
	case fHost:
		return appendHost(b, p)
	}
	return strconv.AppendBool(b, l.truth(i, f))
}

func (l *prefixList) truth(i int, f elemField) bool {
	p := l.ps[i]
	switch f {
	case fLast:
		return i == len(l.ps)-1
	case fLen:
		return p.Bits() != 0
	case fWildcard:
		return p.Addr().Is4()
	}
	return true
}

// executeTemplate runs a template loaded by loadTemplate into w, through
// the buffered writer the compiled ranges write to as well.
func executeTemplate(t *template.Template, fr *fastRanges, w io.Writer, data any) error {
	fr.w = bufio.NewWriterSize(w, 64<<10)
	defer func() { fr.w = nil }()
	if err := t.Execute(fr.w, data); err != nil {
		return err
	}
	return fr.w.Flush()
}
