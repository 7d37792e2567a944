package bgp

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// A speaker killed without its stop (kill -9) leaves its private API
// directory behind; the next speaker's start removes it, and leaves alone
// the directory of a speaker still running or still starting.
func TestDeadAPISocketDirsAreRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	mk := func(name string) string {
		d := filepath.Join(tmp, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(d, "gobgp.sock")
	}
	// dead: the socket file is there, nobody listens.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: mk(apiDirPattern + "dead"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	// running: a listener answers.
	live, err := net.ListenUnix("unix", &net.UnixAddr{Name: mk(apiDirPattern + "running"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// starting: no socket yet.
	mk(apiDirPattern + "starting")
	// someone else's directory of another name.
	other := mk("other-dead")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	sock, addr, err := newAPISocket()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.close()
	if filepath.Dir(sock.dir) != tmp || addr != "unix://"+filepath.Join(sock.dir, "gobgp.sock") {
		t.Fatalf("socket %s (%s), want one in %s", addr, sock.dir, tmp)
	}
	for name, want := range map[string]bool{apiDirPattern + "dead": false, apiDirPattern + "running": true,
		apiDirPattern + "starting": true, "other-dead": true} {
		_, err := os.Stat(filepath.Join(tmp, name))
		if got := err == nil; got != want {
			t.Errorf("%s: there %v, want %v (%v)", name, got, want, err)
		}
	}
	sock.close()
	if _, err := os.Stat(sock.dir); !os.IsNotExist(err) {
		t.Errorf("the speaker's own directory is still there after close: %v", err)
	}
}
