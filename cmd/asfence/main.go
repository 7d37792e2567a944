// Command asfence keeps named organisations' networks off routers: it
// resolves their ASNs and prefixes from the routing registries, generates
// vendor filters, and announces RTBH / FlowSpec routes over BGP.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/asfence/asfence/internal/config"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

// Exit codes (the CLI contract).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks bad usage or bad config: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app carries what every command needs; there is no package-level state.
type app struct {
	stdout, stderr io.Writer
	version        string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, version: Version}
	root := &cobra.Command{
		Use:           "asfence",
		Short:         "Keep named organisations' networks off your routers",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		a.resolveCmd(),
		a.generateCmd(),
		a.explainCmd(),
		a.reportCmd(),
		a.diffCmd(),
		a.vendorsCmd(),
		a.checkConfigCmd(),
		a.announceCmd(),
		a.runCmd(),
	)
	a.addDaemonClientCmds(root)
	stopProfiles, err := startProfiles()
	if err != nil {
		fmt.Fprintf(stderr, "asfence: %v\n", err)
		return exitFailure
	}
	err = root.ExecuteContext(ctx)
	stopProfiles()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "asfence: %v\n", err)
	var ue usageError
	var ce *config.Error
	switch {
	case errors.As(err, &ue), errors.As(err, &ce), isCobraUsage(err):
		return exitUsage
	default:
		return exitFailure
	}
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong number of args), which are usage errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// loadConfig loads the config file, or returns the default config when path
// is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse("(default config)", nil)
	}
	return config.Load(path)
}
