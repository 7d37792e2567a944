package bgp

import (
	"fmt"
	"regexp"
	"sync"
	"time"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/sirupsen/logrus"
)

// gobgpLogger adapts GoBGP's logger to logrus, and remembers per neighbor
// the last problem GoBGP reported (PeerStatus.LastError) and the last
// NOTIFICATION sent or received (PeerStatus.LastNotification): GoBGP
// reports neither through its API.
//
// GoBGP's Info messages (every config step) go to Debug: the speaker logs
// peer state changes itself, and each NOTIFICATION in its own words.
type gobgpLogger struct {
	l   *logrus.Entry // GoBGP's own messages
	bgp *logrus.Entry // the speaker's
	now func() time.Time

	mu       sync.Mutex
	lastErr  map[string]string
	notif    map[string]Notification
	received map[string]uint64 // NOTIFICATIONs received, as logged
}

// Notification is a BGP NOTIFICATION message (RFC 4271 §4.5): the error
// that ended a session or refused it.
type Notification struct {
	// Direction is "received" (the peer sent it) or "sent".
	Direction string `json:"direction"`
	Code      uint8  `json:"code"`
	Subcode   uint8  `json:"subcode"`
	// Text names the error ("OPEN message error: unacceptable hold
	// time"), followed by a shutdown communication (RFC 9003) if any.
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Directions of a Notification.
const (
	NotificationReceived = "received"
	NotificationSent     = "sent"
)

func (n Notification) String() string {
	return fmt.Sprintf("%s %d/%d %s", n.Direction, n.Code, n.Subcode, n.Text)
}

func newGoBGPLogger(l *logrus.Entry) *gobgpLogger {
	return &gobgpLogger{l: l.WithField("component", "gobgp"), bgp: l.WithField("component", "bgp"), now: time.Now,
		lastErr: map[string]string{}, notif: map[string]Notification{}, received: map[string]uint64{}}
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

// notification records a NOTIFICATION GoBGP logged ("received
// notification", "sent notification"), and logs it; it reports whether
// msg was one. GoBGP logs the code and subcode as fields, or (for errors
// it found in a message) a *bgp.MessageError as "Data".
func (a *gobgpLogger) notification(msg string, f gobgplog.Fields) bool {
	dir := map[string]string{"received notification": NotificationReceived, "sent notification": NotificationSent}[msg]
	key, _ := f["Key"].(string)
	if dir == "" || key == "" {
		return false
	}
	var code, subcode uint8
	var data []byte
	if e, ok := f["Data"].(*bgp.MessageError); ok {
		code, subcode, data = e.TypeCode, e.SubTypeCode, e.Data
	} else {
		code, _ = f["Code"].(uint8)
		subcode, _ = f["Subcode"].(uint8)
		data, _ = f["Data"].([]byte)
	}
	n := newNotification(dir, code, subcode, data, a.now())
	if r, _ := f["Communicated-Reason"].(string); r != "" {
		n.Text = notificationText(code, subcode) + ": " + r
	}
	a.record(key, n, false)
	return true
}

// newNotification builds a Notification; data is the message's data
// field, shown for a cease (RFC 9003 shutdown communication).
func newNotification(dir string, code, subcode uint8, data []byte, at time.Time) Notification {
	n := Notification{Direction: dir, Code: code, Subcode: subcode, Text: notificationText(code, subcode), At: at.UTC()}
	if code == bgp.BGP_ERROR_CEASE && len(data) > 1 && int(data[0]) == len(data)-1 {
		n.Text += fmt.Sprintf(": %q", data[1:])
	}
	return n
}

// record keeps n as the neighbor's last NOTIFICATION and logs it.
// probed: the neighbor sent it in answer to a probe (see probe).
func (a *gobgpLogger) record(addr string, n Notification, probed bool) {
	a.mu.Lock()
	a.notif[addr] = n
	if n.Direction == NotificationReceived && !probed {
		a.received[addr]++
	}
	a.lastErr[addr] = fmt.Sprintf("notification %s: %s", n.Direction, n.Text)
	a.mu.Unlock()
	e := a.bgp.WithFields(logrus.Fields{"peer": addr, "code": n.Code, "subcode": n.Subcode, "notification": n.Text})
	switch {
	case probed:
		e.Warn("bgp: notification received: the peer refuses the session")
	case n.Direction == NotificationReceived:
		e.Warn("bgp: notification received: the peer closed or refused the session")
	case n.Code == bgp.BGP_ERROR_CEASE && n.Subcode == bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED:
		e.Error("bgp: notification sent: the neighbor sent more routes than its max_prefixes; session closed (filter what it sends us)")
	case n.Code == bgp.BGP_ERROR_CEASE:
		e.Info("bgp: notification sent: session closed")
	default:
		e.Warn("bgp: notification sent: the peer's message was refused")
	}
}

// receivedLogged counts the NOTIFICATIONs from a neighbor GoBGP logged
// (those of established sessions).
func (a *gobgpLogger) receivedLogged(addr string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.received[addr]
}

func (a *gobgpLogger) lastError(addr string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr[addr]
}

// lastNotification returns the neighbor's last NOTIFICATION (nil: none).
func (a *gobgpLogger) lastNotification(addr string) *Notification {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.notif[addr]
	if !ok {
		return nil
	}
	return &n
}

// The RFC 4271 names of the error codes; GoBGP names the subcodes.
var notificationCodes = map[uint8]string{
	bgp.BGP_ERROR_MESSAGE_HEADER_ERROR:        "message header error",
	bgp.BGP_ERROR_OPEN_MESSAGE_ERROR:          "OPEN message error",
	bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR:        "UPDATE message error",
	bgp.BGP_ERROR_HOLD_TIMER_EXPIRED:          "hold timer expired",
	bgp.BGP_ERROR_FSM_ERROR:                   "finite state machine error",
	bgp.BGP_ERROR_CEASE:                       "cease",
	bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR: "ROUTE-REFRESH message error",
}

// gobgpSubcodeRE reads the subcode's name from GoBGP's
// "code 2(open) subcode 6(unacceptable hold time)".
var gobgpSubcodeRE = regexp.MustCompile(`subcode \d+\((.*)\)$`)

// notificationText names a NOTIFICATION's error, e.g. "OPEN message
// error: unacceptable hold time".
func notificationText(code, subcode uint8) string {
	name, ok := notificationCodes[code]
	if !ok {
		name = fmt.Sprintf("error code %d", code)
	}
	sub := ""
	if m := gobgpSubcodeRE.FindStringSubmatch(bgp.NewNotificationErrorCode(code, subcode).String()); m != nil && m[1] != "undefined" {
		sub = m[1]
	} else if subcode != 0 {
		sub = fmt.Sprintf("subcode %d", subcode)
	}
	if sub == "" || sub == name {
		return name
	}
	return name + ": " + sub
}

func (a *gobgpLogger) Panic(msg string, f gobgplog.Fields) { a.entry(f).Panic(msg) }

// Fatal: GoBGP calls it only when its gRPC listener (the speaker's
// private API socket) fails. logrus would exit the process; an error is
// enough: Start then fails, as the socket never answers.
func (a *gobgpLogger) Fatal(msg string, f gobgplog.Fields) { a.entry(f).Error(msg) }
func (a *gobgpLogger) Error(msg string, f gobgplog.Fields) {
	a.note(msg, f)
	a.entry(f).Error(msg)
}
func (a *gobgpLogger) Warn(msg string, f gobgplog.Fields) {
	if a.notification(msg, f) {
		a.entry(f).Debug(msg) // logged above in the speaker's words
		return
	}
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
