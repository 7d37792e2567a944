package bgp

import (
	"fmt"
	"sync"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/sirupsen/logrus"
)

// gobgpLogger adapts GoBGP's logger to logrus, and remembers the last
// problem GoBGP reported for each neighbor (PeerStatus.LastError).
//
// GoBGP's Info messages (every config step) go to Debug: the speaker logs
// peer state changes itself.
type gobgpLogger struct {
	l *logrus.Entry

	mu      sync.Mutex
	lastErr map[string]string
}

func newGoBGPLogger(l *logrus.Entry) *gobgpLogger {
	return &gobgpLogger{l: l.WithField("component", "gobgp"), lastErr: map[string]string{}}
}

func (a *gobgpLogger) entry(f gobgplog.Fields) *logrus.Entry { return a.l.WithFields(logrus.Fields(f)) }

// note records a per-neighbor problem: GoBGP names the neighbor in "Key".
func (a *gobgpLogger) note(msg string, f gobgplog.Fields) {
	key, _ := f["Key"].(string)
	if key == "" {
		return
	}
	if r, ok := f["Reason"]; ok {
		msg = fmt.Sprintf("%s: %v", msg, r)
	} else if e, ok := f["Error"]; ok {
		msg = fmt.Sprintf("%s: %v", msg, e)
	} else if c, ok := f["Code"]; ok {
		msg = fmt.Sprintf("%s: code %v subcode %v", msg, c, f["Subcode"])
	}
	a.mu.Lock()
	a.lastErr[key] = msg
	a.mu.Unlock()
}

func (a *gobgpLogger) lastError(addr string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr[addr]
}

func (a *gobgpLogger) Panic(msg string, f gobgplog.Fields) { a.entry(f).Panic(msg) }

// Fatal: GoBGP calls it only when its gRPC listener fails, which the
// speaker never starts. logrus would exit the process; an error is enough.
func (a *gobgpLogger) Fatal(msg string, f gobgplog.Fields) { a.entry(f).Error(msg) }
func (a *gobgpLogger) Error(msg string, f gobgplog.Fields) {
	a.note(msg, f)
	a.entry(f).Error(msg)
}
func (a *gobgpLogger) Warn(msg string, f gobgplog.Fields) {
	a.note(msg, f)
	a.entry(f).Warn(msg)
}
func (a *gobgpLogger) Info(msg string, f gobgplog.Fields) {
	if msg == "Peer Down" {
		a.note(msg, f)
	}
	a.entry(f).Debug(msg)
}
func (a *gobgpLogger) Debug(msg string, f gobgplog.Fields) {
	if msg == "failed to connect" {
		a.note(msg, f)
	}
	a.entry(f).Trace(msg)
}
func (a *gobgpLogger) SetLevel(l gobgplog.LogLevel) {}

// GetLevel: GoBGP skips building some debug messages below Debug.
func (a *gobgpLogger) GetLevel() gobgplog.LogLevel { return gobgplog.LogLevel(a.l.Logger.GetLevel()) }
