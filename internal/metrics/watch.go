package metrics

import "github.com/prometheus/client_golang/prometheus"

// WatchStats are the live watch's figures at scrape time.
type WatchStats struct {
	Routes, Candidates     int
	Applied, Held, Refused uint64
	WindowUsed             int
	LastDelaySeconds       float64
}

// Watch registers the asfence_watch_* metrics, read from stats at scrape
// time.
func (m *Metrics) Watch(stats func() WatchStats) {
	m.reg.MustRegister(&watchCollector{stats: stats})
}

var (
	watchRoutes = prometheus.NewDesc("asfence_watch_routes",
		"Routes originated by a target ASN that the live watch follows (per router/peer).", nil, nil)
	watchCandidates = prometheus.NewDesc("asfence_watch_candidates",
		"Target prefixes seen in routing and not applied yet (waiting for the guard, a decision or the policy).", nil, nil)
	watchApplied = prometheus.NewDesc("asfence_watch_applied_prefixes_total",
		"Prefixes the live watch applied without approval.", nil, nil)
	watchHeld = prometheus.NewDesc("asfence_watch_held_batches_total",
		"Batches the live guard held for approval.", nil, nil)
	watchRefused = prometheus.NewDesc("asfence_watch_refused_total",
		"Candidates the policy refused (protected, bogon, length, exception).", nil, nil)
	watchWindow = prometheus.NewDesc("asfence_watch_window_additions",
		"Prefixes applied by the watch within watch.window (against watch.max_additions).", nil, nil)
	watchDelay = prometheus.NewDesc("asfence_watch_last_delay_seconds",
		"From the first sighting of the last applied batch's earliest route to its apply.", nil, nil)
)

type watchCollector struct{ stats func() WatchStats }

func (c *watchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{watchRoutes, watchCandidates, watchApplied, watchHeld, watchRefused, watchWindow, watchDelay} {
		ch <- d
	}
}

func (c *watchCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(watchRoutes, prometheus.GaugeValue, float64(s.Routes))
	ch <- prometheus.MustNewConstMetric(watchCandidates, prometheus.GaugeValue, float64(s.Candidates))
	ch <- prometheus.MustNewConstMetric(watchApplied, prometheus.CounterValue, float64(s.Applied))
	ch <- prometheus.MustNewConstMetric(watchHeld, prometheus.CounterValue, float64(s.Held))
	ch <- prometheus.MustNewConstMetric(watchRefused, prometheus.CounterValue, float64(s.Refused))
	ch <- prometheus.MustNewConstMetric(watchWindow, prometheus.GaugeValue, float64(s.WindowUsed))
	ch <- prometheus.MustNewConstMetric(watchDelay, prometheus.GaugeValue, s.LastDelaySeconds)
}
