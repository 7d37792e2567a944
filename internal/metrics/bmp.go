package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BMPRouter is one router of the BMP receiver at scrape time.
type BMPRouter struct {
	Address, Name    string
	Up               bool
	Peers, Routes    int
	Messages, Errors uint64
	LastMessage      time.Time
}

// BMP registers the asfence_bmp_* metrics, read from routers at scrape
// time.
func (m *Metrics) BMP(routers func() []BMPRouter) {
	m.reg.MustRegister(&bmpCollector{routers: routers})
}

var (
	bmpUp = prometheus.NewDesc("asfence_bmp_router_up",
		"1 while the router's BMP session is up.", []string{"router", "name"}, nil)
	bmpPeers = prometheus.NewDesc("asfence_bmp_router_peers",
		"The router's monitored peers that are up (its Loc-RIB counts as one).", []string{"router"}, nil)
	bmpRoutes = prometheus.NewDesc("asfence_bmp_router_routes",
		"Routes held for the router (one per peer and prefix).", []string{"router"}, nil)
	bmpMessages = prometheus.NewDesc("asfence_bmp_router_messages_total",
		"BMP messages read from the router.", []string{"router"}, nil)
	bmpErrors = prometheus.NewDesc("asfence_bmp_router_errors_total",
		"The router's messages that did not decode, dropped sessions and refusals.", []string{"router"}, nil)
	bmpLast = prometheus.NewDesc("asfence_bmp_router_last_message_timestamp_seconds",
		"When the router's last BMP message arrived.", []string{"router"}, nil)
)

type bmpCollector struct{ routers func() []BMPRouter }

func (c *bmpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{bmpUp, bmpPeers, bmpRoutes, bmpMessages, bmpErrors, bmpLast} {
		ch <- d
	}
}

func (c *bmpCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.routers() {
		up := 0.0
		if r.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(bmpUp, prometheus.GaugeValue, up, r.Address, r.Name)
		ch <- prometheus.MustNewConstMetric(bmpPeers, prometheus.GaugeValue, float64(r.Peers), r.Address)
		ch <- prometheus.MustNewConstMetric(bmpRoutes, prometheus.GaugeValue, float64(r.Routes), r.Address)
		ch <- prometheus.MustNewConstMetric(bmpMessages, prometheus.CounterValue, float64(r.Messages), r.Address)
		ch <- prometheus.MustNewConstMetric(bmpErrors, prometheus.CounterValue, float64(r.Errors), r.Address)
		if !r.LastMessage.IsZero() {
			ch <- prometheus.MustNewConstMetric(bmpLast, prometheus.GaugeValue, float64(r.LastMessage.UnixNano())/1e9, r.Address)
		}
	}
}
