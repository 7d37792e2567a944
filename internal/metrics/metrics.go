// Package metrics holds the daemon's Prometheus metrics, in a registry of
// its own (never the global default one).
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/store"
)

// PeerSource reads the speaker's neighbors at scrape time.
type PeerSource func(ctx context.Context) ([]bgp.PeerStatus, error)

// Metrics are the daemon's metrics.
type Metrics struct {
	reg *prometheus.Registry

	runs          *prometheus.CounterVec
	lastSuccess   prometheus.Gauge
	lastRun       prometheus.Gauge
	lastDuration  prometheus.Gauge
	prefixes      *prometheus.GaugeVec
	asns          *prometheus.GaugeVec
	sourceErrors  *prometheus.CounterVec
	sourceUp      *prometheus.GaugeVec
	degraded      prometheus.Gauge
	carried       prometheus.Gauge
	held          prometheus.Gauge
	ready         prometheus.Gauge
	reloads       *prometheus.CounterVec
	outputErrors  prometheus.Counter
	outputsOK     prometheus.Gauge
	applyFailures prometheus.Counter
	bgpChanges    *prometheus.CounterVec
}

// New creates the metrics; peers may be nil (no BGP speaker).
func New(version string, peers PeerSource) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) } // fixed names: a clash is a programming error
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asfence_runs_total",
		Help: "Runs finished, by outcome (applied, held, unchanged, failed)."}, []string{"outcome"})
	for _, o := range []string{store.Applied, store.Held, store.Unchanged, store.Failed} {
		m.runs.WithLabelValues(o)
	}
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_last_success_timestamp_seconds",
		Help: "End of the last run that resolved without failing (applied, held or unchanged)."})
	m.lastRun = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_last_run_timestamp_seconds",
		Help: "End of the last run, whatever its outcome."})
	m.lastDuration = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_last_run_duration_seconds",
		Help: "Duration of the last run."})
	m.prefixes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "asfence_prefixes",
		Help: "Prefixes in force (applied), per target and family."}, []string{"target", "family"})
	m.asns = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "asfence_asns",
		Help: "Origin ASNs in force (applied), per target."}, []string{"target"})
	m.sourceErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asfence_source_errors_total",
		Help: "Failed source queries, per source."}, []string{"source"})
	m.sourceUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "asfence_source_up",
		Help: "1 if the source answered in the last run, 0 if it failed."}, []string{"source"})
	m.degraded = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_degraded",
		Help: "1 if the last run had failed sources (their facts were carried over or nothing was applied)."})
	m.carried = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_carried_over_prefixes",
		Help: "Prefixes kept in the last run only because the sources that gave them failed."})
	m.held = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_held_changes",
		Help: "Held changes waiting for approval."})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_ready",
		Help: "1 once the applied set has been announced after start."})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asfence_config_reloads_total",
		Help: "Config reloads (SIGHUP), by result (ok, error)."}, []string{"result"})
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	m.outputErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "asfence_output_errors_total",
		Help: "Vendor files that could not be rendered or written."})
	m.outputsOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asfence_outputs_current",
		Help: "1 if the vendor files in output_dir match the applied set, 0 if writing them failed (every run tries again)."})
	m.applyFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "asfence_bgp_apply_failures_total",
		Help: "Applies the BGP speaker refused or failed (the announced set was kept)."})
	m.bgpChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asfence_bgp_routes_changed_total",
		Help: "Routes (RTBH prefixes or FlowSpec rules) the speaker's applies added, withdrew or replaced, per family."}, []string{"family", "change"})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "asfence_build_info",
		Help: "asfence version."}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	for _, c := range []prometheus.Collector{m.runs, m.lastSuccess, m.lastRun, m.lastDuration, m.prefixes, m.asns,
		m.sourceErrors, m.sourceUp, m.degraded, m.carried, m.held, m.ready, m.reloads, m.outputErrors, m.outputsOK, m.applyFailures, m.bgpChanges, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	if peers != nil {
		f(&peerCollector{peers: peers})
	}
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the daemon's registry (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Run records a finished run.
func (m *Metrics) Run(r *store.Run) {
	m.runs.WithLabelValues(r.Outcome).Inc()
	end := r.End
	if end.IsZero() {
		end = time.Now()
	}
	m.lastRun.Set(float64(end.Unix()))
	m.lastDuration.Set(end.Sub(r.Start).Seconds())
	if r.Outcome != store.Failed {
		m.lastSuccess.Set(float64(end.Unix()))
	}
	failed := map[string]bool{}
	for _, s := range r.Sources {
		if !s.OK {
			failed[s.Source] = true
			m.sourceErrors.WithLabelValues(s.Source).Inc()
		}
	}
	// Only the last run's sources: a source dropped by a reload disappears.
	m.sourceUp.Reset()
	for _, s := range r.Sources {
		up := 1.0
		if failed[s.Source] {
			up = 0
		}
		m.sourceUp.WithLabelValues(s.Source).Set(up)
	}
	deg := 0.0
	if len(failed) > 0 {
		deg = 1
	}
	m.degraded.Set(deg)
	m.carried.Set(float64(r.Carried.Prefixes))
}

// Applied sets the in-force counts.
func (m *Metrics) Applied(counts []store.TargetCount) {
	m.prefixes.Reset()
	m.asns.Reset()
	for _, c := range counts {
		m.prefixes.WithLabelValues(c.Target, "ipv4").Set(float64(c.IPv4))
		m.prefixes.WithLabelValues(c.Target, "ipv6").Set(float64(c.IPv6))
		m.asns.WithLabelValues(c.Target).Set(float64(c.ASNs))
	}
}

// Held sets the number of held changes waiting.
func (m *Metrics) Held(n int) { m.held.Set(float64(n)) }

// Ready marks the daemon ready.
func (m *Metrics) Ready(ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.ready.Set(v)
}

// Reload counts a config reload.
func (m *Metrics) Reload(err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
}

// OutputError counts a vendor file not written.
func (m *Metrics) OutputError() { m.outputErrors.Inc() }

// OutputsCurrent says whether the vendor files match the applied set.
func (m *Metrics) OutputsCurrent(ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.outputsOK.Set(v)
}

// ApplyFailure counts a failed BGP apply.
func (m *Metrics) ApplyFailure() { m.applyFailures.Inc() }

// BGPApplied counts what a BGP apply changed, per family.
func (m *Metrics) BGPApplied(c bgp.Counts) {
	for fam, fc := range c.ByFamily {
		m.bgpChanges.WithLabelValues(fam, "added").Add(float64(fc.Added))
		m.bgpChanges.WithLabelValues(fam, "withdrawn").Add(float64(fc.Withdrawn))
		m.bgpChanges.WithLabelValues(fam, "replaced").Add(float64(fc.Replaced))
	}
}

var (
	peerUpDesc = prometheus.NewDesc("asfence_bgp_peer_established",
		"1 if the BGP session is established.", []string{"peer", "description", "state"}, nil)
	peerSentDesc = prometheus.NewDesc("asfence_bgp_peer_prefixes_sent",
		"Routes (RTBH prefixes or FlowSpec rules) sent to the peer, per family.", []string{"peer", "family"}, nil)
	peerReceivedDesc = prometheus.NewDesc("asfence_bgp_peer_prefixes_received",
		"Routes the peer sent (the speaker uses none of them), per family.", []string{"peer", "family"}, nil)
	peerUpdatesDesc = prometheus.NewDesc("asfence_bgp_peer_updates_sent_total",
		"UPDATE messages sent to the peer on its current session.", []string{"peer"}, nil)
	peerScrapeDesc = prometheus.NewDesc("asfence_bgp_peers_scrape_error",
		"1 if the speaker could not be asked for its peers.", nil, nil)
)

// peerCollector reads the speaker at scrape time, so the figures are never
// stale.
type peerCollector struct{ peers PeerSource }

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- peerUpDesc
	ch <- peerSentDesc
	ch <- peerReceivedDesc
	ch <- peerUpdatesDesc
	ch <- peerScrapeDesc
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps, err := c.peers(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(peerScrapeDesc, prometheus.GaugeValue, failed)
	for _, p := range ps {
		up := 0.0
		if p.Established {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(peerUpDesc, prometheus.GaugeValue, up, p.Address, p.Description, p.State)
		for fam, n := range p.Sent {
			ch <- prometheus.MustNewConstMetric(peerSentDesc, prometheus.GaugeValue, float64(n), p.Address, fam)
		}
		for fam, n := range p.Received {
			ch <- prometheus.MustNewConstMetric(peerReceivedDesc, prometheus.GaugeValue, float64(n), p.Address, fam)
		}
		ch <- prometheus.MustNewConstMetric(peerUpdatesDesc, prometheus.CounterValue, float64(p.UpdatesSent), p.Address)
	}
}
