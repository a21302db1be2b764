package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names are a contract with deploy/'s dashboards and alert rules.
type metrics struct {
	deliveries *prometheus.CounterVec // by result: delivered, retried, failed
	duration   prometheus.Histogram
	disabled   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st *store.Store) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_webhook_deliveries_total",
			Help: "Webhook attempts by what came of their delivery: delivered, retried (to be tried again) or failed (given up).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dionysia_webhook_attempt_duration_seconds",
			Help:    "Duration of webhook requests, from sending to the answer (or the error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dionysia_webhook_endpoints_disabled_total",
			Help: "Webhook endpoints this process disabled after consecutive failed deliveries.",
		}),
	}
	for _, r := range []string{"delivered", "retried", "failed"} {
		m.deliveries.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.duration, m.disabled, &stateCollector{st: st}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering webhook metrics: %w", err)
		}
	}
	return m, nil
}

// stateCollector reads the delivery queue and the endpoints' failure counts
// from the database at scrape time, so every API replica reports the same,
// true numbers.
type stateCollector struct{ st *store.Store }

var (
	pendingDesc = prometheus.NewDesc("dionysia_webhook_pending_deliveries",
		"Webhook deliveries waiting to be sent to enabled endpoints (the whole platform's).", nil, nil)
	failuresDesc = prometheus.NewDesc("dionysia_webhook_endpoint_consecutive_failures",
		"Failed webhook attempts in a row, per endpoint (any delivery's; reset by a successful one).", []string{"webhook_id"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- failuresDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := c.st.PendingDeliveries(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
	}
	failures, err := c.st.WebhookFailures(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(failuresDesc, err)
		return
	}
	for id, f := range failures {
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.GaugeValue, float64(f), id.String())
	}
}
