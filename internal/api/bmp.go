package api

import (
	"context"
	"net/http"
	"time"
)

// BMP is GET /api/v1/bmp: the BMP receiver's routers and the live watch.
type BMP struct {
	// Listen is bmp.listen ("" when the receiver is off).
	Listen  string      `json:"listen"`
	Routers []BMPRouter `json:"routers"`
	Watch   WatchStatus `json:"watch"`
}

// BMPRouter is one router reporting over BMP (or refused by bmp.routers).
type BMPRouter struct {
	Address     string    `json:"address"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	State       string    `json:"state"`
	Since       time.Time `json:"since,omitzero"`
	Connections int       `json:"connections"`
	Peers       int       `json:"peers"`
	Routes      int       `json:"routes"`
	Messages    uint64    `json:"messages"`
	LastMessage time.Time `json:"last_message,omitzero"`
	Errors      uint64    `json:"errors"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// WatchStatus is the live watch's state.
type WatchStatus struct {
	// On: bmp.listen or a feed neighbor is configured.
	On bool `json:"on"`
	// Routes originated by target ASNs followed (per router/peer);
	// Candidates: target prefixes seen and not applied yet.
	Routes     int `json:"routes"`
	Candidates int `json:"candidates"`
	// Applied counts prefixes applied without approval, Held the batches
	// held, Refused the candidates the policy dropped.
	Applied uint64 `json:"applied"`
	Held    uint64 `json:"held"`
	Refused uint64 `json:"refused"`
	// WindowUsed of MaxAdditions per Window.
	WindowUsed   int    `json:"window_used"`
	MaxAdditions int    `json:"max_additions"`
	Window       string `json:"window"`
	MinSources   int    `json:"min_sources"`
	LastRun      uint64 `json:"last_run,omitempty"`
	LastOutcome  string `json:"last_outcome,omitempty"`
	LastError    string `json:"last_error,omitempty"`
}

// BMPBackend is the part of a Backend that serves /api/v1/bmp.
type BMPBackend interface {
	BMP(ctx context.Context) (*BMP, error)
}

func (s *Server) bmp(w http.ResponseWriter, r *http.Request) {
	b, ok := s.b.(BMPBackend)
	if !ok {
		writeError(w, http.StatusNotFound, "no BMP receiver or live watch in this daemon")
		return
	}
	st, err := b.BMP(r.Context())
	if err != nil {
		backendError(w, err)
		return
	}
	if st.Routers == nil {
		st.Routers = []BMPRouter{}
	}
	writeJSON(w, http.StatusOK, st)
}

// BMP reads GET /api/v1/bmp.
func (c *Client) BMP(ctx context.Context) (*BMP, error) {
	var out BMP
	if err := c.do(ctx, http.MethodGet, "/api/v1/bmp", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
