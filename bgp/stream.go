package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// GoBGP takes a list of paths in one step only through its gRPC
// AddPathStream; its Go API's AddPath takes one path, and each call is a
// round trip through GoBGP's management goroutine (and a UUID it keeps
// per path). Loading a million paths one call at a time spends
// most of its time in those round trips. So the speaker starts GoBGP's
// gRPC API on a unix socket in a private directory (0700, removed at
// stop) and sends bulk changes through it, in batches; GoBGP still
// propagates each path on its own, so a change on a live session is one
// UPDATE per path, as before.

// streamBatch is the number of paths per AddPathStream message (gRPC's
// default limit is 4 MiB a message; a path takes about 60 bytes).
const streamBatch = 2000

// apiSocket is where the speaker's GoBGP API listens.
type apiSocket struct {
	dir  string
	conn *grpc.ClientConn
}

// newAPISocket makes the private directory and returns GoBGP's listen
// address in it.
func newAPISocket() (*apiSocket, string, error) {
	removeDeadSockets(os.TempDir())
	dir, err := os.MkdirTemp("", apiDirPattern)
	if err != nil {
		return nil, "", fmt.Errorf("bgp: directory for the speaker's API socket: %w", err)
	}
	return &apiSocket{dir: dir}, "unix://" + filepath.Join(dir, "gobgp.sock"), nil
}

// apiDirPattern names the private directories (os.MkdirTemp adds digits).
const apiDirPattern = "asfence-bgp-"

// removeDeadSockets removes the private directories in dir that a speaker
// killed without its stop (kill -9, a crash) left behind: those whose
// socket is there and refuses connections (nobody listens on it). A
// directory whose socket is not made yet (a speaker starting) or that
// answers (a speaker running) is left alone, as is anything this user
// cannot remove.
func removeDeadSockets(dir string) {
	dirs, err := filepath.Glob(filepath.Join(dir, apiDirPattern+"*"))
	if err != nil {
		return
	}
	for _, d := range dirs {
		sock := filepath.Join(d, "gobgp.sock")
		if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
			continue
		}
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			continue
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			_ = os.RemoveAll(d)
		}
	}
}

// apiTimeout bounds the wait for GoBGP's API to listen at start.
const apiTimeout = 10 * time.Second

// dial connects to GoBGP's API, which starts listening in the
// background, and waits until it answers.
func (a *apiSocket) dial(ctx context.Context) error {
	conn, err := grpc.Dial("unix://"+filepath.Join(a.dir, "gobgp.sock"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("bgp: connect to the speaker's API socket: %w", err)
	}
	a.conn = conn
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if _, err := api.NewGobgpApiClient(conn).GetBgp(ctx, &api.GetBgpRequest{}, grpc.WaitForReady(true)); err != nil {
		return fmt.Errorf("bgp: the speaker's API socket %s: %w", a.dir, err)
	}
	return nil
}

func (a *apiSocket) close() {
	if a == nil {
		return
	}
	if a.conn != nil {
		_ = a.conn.Close()
	}
	_ = os.RemoveAll(a.dir)
}

// pathStream sends paths (announcements and, with IsWithdraw, withdrawals)
// to GoBGP in order, in batches.
type pathStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	st     api.GobgpApi_AddPathStreamClient
	buf    []*api.Path
	sent   int
}

func (a *apiSocket) stream(ctx context.Context) (*pathStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	st, err := api.NewGobgpApiClient(a.conn).AddPathStream(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bgp: path stream: %w", err)
	}
	return &pathStream{ctx: ctx, cancel: cancel, st: st, buf: make([]*api.Path, 0, streamBatch)}, nil
}

func (p *pathStream) send(path *api.Path) error {
	p.buf = append(p.buf, path)
	if len(p.buf) == streamBatch {
		return p.flush()
	}
	return nil
}

func (p *pathStream) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	err := p.st.Send(&api.AddPathStreamRequest{TableType: api.TableType_GLOBAL, Paths: p.buf})
	if errors.Is(err, io.EOF) {
		// GoBGP ended the stream: CloseAndRecv says why.
		_, err = p.st.CloseAndRecv()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		p.cancel()
		return fmt.Errorf("bgp: path stream (after %d paths): %w", p.sent, err)
	}
	p.sent += len(p.buf)
	p.buf = p.buf[:0]
	return nil
}

// close sends what is left and waits until GoBGP has taken every path.
func (p *pathStream) close() error {
	defer p.cancel()
	if err := p.flush(); err != nil {
		return err
	}
	if _, err := p.st.CloseAndRecv(); err != nil {
		return fmt.Errorf("bgp: path stream (%d paths): %w", p.sent, err)
	}
	return nil
}

// withStream runs f with a new stream and then sends what is left and
// waits until GoBGP has taken every path; if f fails, the stream is
// ended without waiting and f's error returned. what names the work in
// the error of the final wait.
func (a *apiSocket) withStream(ctx context.Context, what string, f func(*pathStream) error) error {
	st, err := a.stream(ctx)
	if err != nil {
		return err
	}
	if err := f(st); err != nil {
		st.abort()
		return err
	}
	if err := st.close(); err != nil {
		return fmt.Errorf("bgp: %s: %w", what, err)
	}
	return nil
}

// abort ends the stream without waiting (after an error).
func (p *pathStream) abort() { p.cancel() }
