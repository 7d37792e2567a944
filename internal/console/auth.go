package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/asfence/asfence/internal/api"
)

// Cookies.
const (
	sessionCookie = "asfence_session"
	csrfCookie    = "asfence_csrf"
	// csrfField is the hidden form field carrying the CSRF token.
	csrfField = "csrf"
)

const (
	// sessionLifetime bounds a signed-in session (absolute, not sliding).
	sessionLifetime = 12 * time.Hour
	// maxSessions bounds the session table: the oldest goes first.
	maxSessions = 256
	// Sign-in failures beyond maxFailures within failureWindow are refused
	// with 429 until the window has passed.
	maxFailures   = 10
	failureWindow = time.Minute
)

// authenticator keeps the signed-in sessions (in memory: a restart signs
// everyone out) and makes and checks CSRF tokens.
type authenticator struct {
	token func() string
	now   func() time.Time
	// secret keys the CSRF tokens.
	secret []byte

	mu       sync.Mutex
	sessions map[string]session
	failures []time.Time
}

type session struct {
	expires time.Time
	// token is a digest of the API token the session signed in with: a
	// changed token (config reload) ends the session.
	token [32]byte
}

func newAuthenticator(token func() string, now func() time.Time) (*authenticator, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("console: random key: %w", err)
	}
	return &authenticator{token: token, now: now, secret: secret, sessions: map[string]session{}}, nil
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// secure reports whether cookies can be marked Secure: the request came
// over TLS (directly or through a proxy that says so).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

// csrf returns the CSRF token for r's forms, setting the cookie it is
// bound to when r has none yet.
func (a *authenticator) csrf(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		v = ck.Value
	} else {
		v = randomID()
		setCookie(w, r, csrfCookie, v, 0)
	}
	return a.csrfFor(v)
}

func (a *authenticator) csrfFor(cookie string) string {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte("csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF: the form's token matches the request's CSRF cookie.
func (a *authenticator) checkCSRF(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || ck.Value == "" {
		return false
	}
	got := r.PostFormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(a.csrfFor(ck.Value)))
}

// bearer reports whether r carries the API token as a bearer header (a
// browser never sends one on its own, so such a request needs no CSRF
// token).
func (a *authenticator) bearer(r *http.Request) bool {
	return api.HasBearer(r, a.token())
}

// signedIn reports whether r has a live session for the token in force.
func (a *authenticator) signedIn(r *http.Request) bool {
	tok := a.token()
	if tok == "" {
		return false
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[ck.Value]
	if !ok {
		return false
	}
	if a.now().After(s.expires) || s.token != sha256.Sum256([]byte(tok)) {
		delete(a.sessions, ck.Value)
		return false
	}
	return true
}

// status tells a page whether the user is signed in and whether acting
// needs it (a token is configured).
func (a *authenticator) status(r *http.Request) (signedIn, needSignIn bool) {
	if a.token() == "" {
		return false, false
	}
	return a.signedIn(r), true
}

// mayAct: acting is allowed where the API allows it (no token
// configured), to a signed-in session, or with the bearer token.
func (a *authenticator) mayAct(r *http.Request) bool {
	return a.token() == "" || a.signedIn(r) || a.bearer(r)
}

// errSignInLimited: too many wrong tokens lately.
var errSignInLimited = errors.New("too many failed sign-ins: wait a minute")

// errNoToken: sign-in is meaningless without a configured token.
var errNoToken = errors.New("no API token is configured (api.token_file): acting needs no sign-in")

// signIn checks the token and opens a session, returning its id.
func (a *authenticator) signIn(given string) (string, error) {
	tok := a.token()
	if tok == "" {
		return "", errNoToken
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	recent := a.failures[:0]
	for _, t := range a.failures {
		if now.Sub(t) < failureWindow {
			recent = append(recent, t)
		}
	}
	a.failures = recent
	if len(a.failures) >= maxFailures {
		return "", errSignInLimited
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(given)), []byte(tok)) != 1 {
		a.failures = append(a.failures, now)
		return "", errors.New("wrong token")
	}
	for id, s := range a.sessions {
		if now.After(s.expires) {
			delete(a.sessions, id)
		}
	}
	for len(a.sessions) >= maxSessions {
		oldest, at := "", time.Time{}
		for id, s := range a.sessions {
			if oldest == "" || s.expires.Before(at) {
				oldest, at = id, s.expires
			}
		}
		delete(a.sessions, oldest)
	}
	id := randomID()
	a.sessions[id] = session{expires: now.Add(sessionLifetime), token: sha256.Sum256([]byte(tok))}
	return id, nil
}

func (a *authenticator) signOut(r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, ck.Value)
		a.mu.Unlock()
	}
}

// act guards a POST: the CSRF token (unless the bearer header is used)
// and the right to act.
func (c *Console) act(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bearer := c.auth.bearer(r)
		if !bearer && !c.auth.checkCSRF(r) {
			c.fail(w, r, http.StatusForbidden, errors.New("the form's security token is missing or stale: reload the page and try again"))
			return
		}
		if !c.auth.mayAct(r) {
			c.render(w, r, http.StatusUnauthorized, "login", "Sign in", loginPage{Next: refererPath(r),
				Error: "Sign in with the API token to approve, reject or start runs."})
			return
		}
		h(w, r)
	}
}

// localPath keeps a redirect target on this site: a path (with query)
// starting with a single slash, else "/".
func localPath(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.Contains(s, "\\") {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return u.RequestURI()
}

// refererPath is the local path of a same-site Referer ("/" otherwise).
func refererPath(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host != r.Host {
		return "/"
	}
	return localPath(u.RequestURI())
}

// loginPage is the data of the sign-in template.
type loginPage struct {
	Next    string
	Error   string
	NoToken bool
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", "Sign in", loginPage{Next: localPath(r.URL.Query().Get("next")), NoToken: c.opts.Token() == ""})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.PostFormValue("next"))
	if !c.auth.checkCSRF(r) {
		c.render(w, r, http.StatusForbidden, "login", "Sign in", loginPage{Next: next,
			Error: "The form's security token is missing or stale: try again."})
		return
	}
	id, err := c.auth.signIn(r.PostFormValue("token"))
	if err != nil {
		code := http.StatusUnauthorized
		if errors.Is(err, errSignInLimited) {
			code = http.StatusTooManyRequests
		}
		c.opts.Log.WithField("client", r.RemoteAddr).WithError(err).Warn("console: sign-in refused")
		c.render(w, r, code, "login", "Sign in", loginPage{Next: next, Error: "Sign-in refused: " + err.Error() + ".",
			NoToken: errors.Is(err, errNoToken)})
		return
	}
	c.opts.Log.WithField("client", r.RemoteAddr).Info("console: signed in")
	setCookie(w, r, sessionCookie, id, int(sessionLifetime/time.Second))
	http.Redirect(w, r, withDone(next, "signed-in"), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if !c.auth.checkCSRF(r) {
		c.fail(w, r, http.StatusForbidden, errors.New("the form's security token is missing or stale: reload the page and try again"))
		return
	}
	c.auth.signOut(r)
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/?done=signed-out", http.StatusSeeOther)
}

// withDone adds done=what to a local path.
func withDone(path, what string) string {
	u, err := url.Parse(path)
	if err != nil {
		return "/?done=" + what
	}
	q := u.Query()
	q.Set("done", what)
	u.RawQuery = q.Encode()
	return u.String()
}
