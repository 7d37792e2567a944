package daemon

import (
	"io"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/internal/config"
)

// NewLogger builds the daemon's logger: text on a terminal, JSON otherwise
// (journald, files), unless the config says which.
func NewLogger(c config.Log, w io.Writer) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	lvl, err := logrus.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		lvl = logrus.InfoLevel // the config loader has rejected unknown levels
	}
	l.SetLevel(lvl)
	format := c.Format
	if format == "" || format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return l
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
