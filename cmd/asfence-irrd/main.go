// Command asfence-irrd serves RPSL files over the IRRd whois protocol, for
// labs and benchmarks (bgpq4 -h 127.0.0.1:PORT and asfence's sources.irr
// both work against it). It can also generate the IRR benchmark dataset
// from a bgpdump -m table dump.
//
//	asfence-irrd -listen 127.0.0.1:4343 FILE.rpsl...   (SIGHUP: read the files again)
//	asfence-irrd -gen-bgpdump TABLE.txt.gz -gen-out bench.rpsl [-gen-set AS-BENCH] [-gen-source BENCH]
//	asfence-irrd -gen-prefixes 1000000 -gen-out scale.rpsl [-gen-origin 60000]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "asfence-irrd: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(ctx context.Context, args []string, log io.Writer) error {
	fs := flag.NewFlagSet("asfence-irrd", flag.ContinueOnError)
	fs.SetOutput(log)
	listen := fs.String("listen", "127.0.0.1:4343", "address to listen on (port 0: any free port)")
	addrFile := fs.String("addr-file", "", "write the listening address to this file once serving")
	noA := fs.Bool("no-a", false, "answer !a like an IRRd without it (clients fall back to !i,1 and !g/!6)")
	srcs := fs.String("sources", "", "valid sources in default priority order, comma-separated (default: as found in the files)")
	genIn := fs.String("gen-bgpdump", "", "generate the benchmark dataset from this bgpdump -m file (.gz or plain) and exit")
	genOut := fs.String("gen-out", "", "with -gen-bgpdump: write the RPSL dataset here")
	genSet := fs.String("gen-set", "AS-BENCH", "with -gen-bgpdump: name of the AS-SET holding all origins")
	genSource := fs.String("gen-source", "BENCH", "with -gen-bgpdump or -gen-prefixes: source: of the generated objects")
	genN := fs.Int("gen-prefixes", 0, "generate the scale dataset instead: this many /24 route objects of one origin (every other /24 from 32.0.0.0), and exit")
	genOrigin := fs.Uint("gen-origin", 60000, "with -gen-prefixes: the origin ASN (the AS-SET -gen-set holds it)")
	fs.Usage = func() {
		fmt.Fprintf(log, "usage: asfence-irrd [-listen ADDR] [-no-a] FILE.rpsl...\n       asfence-irrd -gen-bgpdump IN -gen-out OUT.rpsl\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if *genN != 0 {
		if *genOut == "" || *genIn != "" || fs.NArg() > 0 || *genOrigin > 1<<32-1 {
			return usageError{errors.New("-gen-prefixes needs -gen-out, an ASN as -gen-origin, no -gen-bgpdump and no RPSL files")}
		}
		if err := generateScale(*genN, uint32(*genOrigin), *genOut, *genSet, *genSource); err != nil {
			return err
		}
		fmt.Fprintf(log, "asfence-irrd: wrote %s: %d route objects of AS%d\n", *genOut, *genN, *genOrigin)
		return nil
	}
	if *genIn != "" {
		if *genOut == "" || fs.NArg() > 0 {
			return usageError{errors.New("-gen-bgpdump needs -gen-out and no RPSL files")}
		}
		st, err := generateFile(*genIn, *genOut, *genSet, *genSource)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "asfence-irrd: wrote %s: %s\n", *genOut, st)
		return nil
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError{errors.New("no RPSL files given")}
	}
	idx, err := irr.LoadFiles(fs.Args()...)
	if err != nil {
		return err
	}
	o := irrd.Options{NoA: *noA}
	if *srcs != "" {
		o.Sources = strings.Split(*srcs, ",")
	}
	srv, err := irrd.Listen(*listen, idx, o)
	if err != nil {
		return err
	}
	defer srv.Close()
	// SIGHUP reads the files again (a lab changing its registry data); a
	// file that does not load leaves the served data as it was.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fmt.Fprintf(log, "asfence-irrd: serving %d route, %d route6, %d as-set, %d aut-num objects (sources %s) on %s\n",
		idx.Count("route"), idx.Count("route6"), idx.Count("as-set"), idx.Count("aut-num"), strings.Join(idx.Sources(), ","), srv.Addr())
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(srv.Addr()+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			idx, err := irr.LoadFiles(fs.Args()...)
			if err != nil {
				fmt.Fprintf(log, "asfence-irrd: reload rejected, still serving the previous data: %v\n", err)
				continue
			}
			_ = srv.SetIndex(idx)
			fmt.Fprintf(log, "asfence-irrd: reloaded: %d route, %d route6, %d as-set, %d aut-num objects\n",
				idx.Count("route"), idx.Count("route6"), idx.Count("as-set"), idx.Count("aut-num"))
		}
	}
}
