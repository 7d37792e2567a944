package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/store"
	"github.com/spf13/cobra"
)

// clientFlags locate a daemon's state: its store (when the daemon is not
// running) or its API.
type clientFlags struct {
	config    string
	stateDir  string
	api       string
	tokenFile string
	format    string
}

func (f *clientFlags) register(c *cobra.Command, format bool) {
	c.Flags().StringVar(&f.config, "config", "", "the daemon's config file (for state_dir, api.listen, api.token_file)")
	c.Flags().StringVar(&f.stateDir, "state-dir", "", "state directory (default: from --config, else "+config.DefaultStateDir+")")
	c.Flags().StringVar(&f.api, "api", "", "daemon API address (default: from --config, else "+config.DefaultAPIListen+")")
	c.Flags().StringVar(&f.tokenFile, "token-file", "", "API bearer token file (default: from --config)")
	if format {
		c.Flags().StringVar(&f.format, "format", "text", "output format: text or json")
	}
}

// apiClient is the running daemon's API for a command that needs it.
func (f *clientFlags) apiClient(command string) (*api.Client, error) {
	t, err := f.resolve()
	if err != nil {
		return nil, err
	}
	if t.client == nil {
		return nil, usagef("the API is off (api.listen: off): %s needs the running daemon's API", command)
	}
	return t.client, nil
}

// target is where a client command reads from.
type target struct {
	stateDir string
	client   *api.Client
	explicit bool // --api given: use only the API
}

func (f *clientFlags) resolve() (*target, error) {
	if f.format != "" && f.format != "text" && f.format != "json" {
		return nil, usagef("--format must be text or json, not %q", f.format)
	}
	cfg := &config.Config{}
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return nil, err
		}
	}
	t := &target{stateDir: cfg.StateDirectory(), explicit: f.api != ""}
	if f.stateDir != "" {
		t.stateDir = f.stateDir
	}
	listen := f.api
	if listen == "" {
		listen = cfg.APIAddress()
	}
	tok, err := cfg.APIToken()
	if err != nil {
		return nil, err
	}
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, usagef("--token-file: %v", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if listen != "" {
		t.client = &api.Client{Base: api.BaseURL(listen), Token: tok}
	}
	return t, nil
}

// openStore opens the store read-only; store.ErrLocked means the daemon
// runs and the API must be asked.
func (t *target) openStore(readOnly bool) (*store.Store, error) {
	return store.Open(t.stateDir, store.Options{ReadOnly: readOnly, Timeout: 200 * time.Millisecond})
}

// read runs fn against the store, or against the API when the daemon
// holds the store (or --api was given).
func (t *target) read(ctx context.Context, fromStore func(*store.Store) error, fromAPI func(*api.Client) error) error {
	if !t.explicit {
		s, err := t.openStore(true)
		if err == nil {
			defer s.Close()
			return fromStore(s)
		}
		if !errors.Is(err, store.ErrLocked) || t.client == nil {
			return err
		}
	}
	if t.client == nil {
		return usagef("the API is off (api.listen: off) and the daemon holds the store")
	}
	return fromAPI(t.client)
}

func parseRunID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id == 0 {
		return 0, usagef("run id %q: want a positive number (see asfence history)", s)
	}
	return id, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "cli"
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addDaemonClientCmds adds the commands that read or drive the daemon's
// state (history, show, approve, reject, peers, trigger).
func (a *app) addDaemonClientCmds(root *cobra.Command) {
	root.AddCommand(a.historyCmd(), a.showCmd(), a.decideCmd(true), a.decideCmd(false), a.peersCmd(), a.triggerCmd())
}
