package main

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// fastBuckets are the latency buckets of verification and the stores, in
// seconds. A verification takes tens of microseconds (EdDSA) to about a
// millisecond (a Redis round trip), which the default buckets (5 ms and up)
// cannot tell apart.
func fastBuckets() []float64 {
	return []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
}

// upstreamBuckets are the latency buckets of upstream answers, in seconds.
func upstreamBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
}

// proxyMetrics are verify-proxy's Prometheus metrics, in a registry of its
// own (never the global default one). It is the verifier's
// [asymjwt.VerifierMetrics] and is safe for concurrent use.
type proxyMetrics struct {
	registry *prometheus.Registry
	draining atomic.Bool // /healthz answers 503 once set

	requests       *prometheus.CounterVec
	requestsOK     prometheus.Counter // requests.WithLabelValues("ok"), looked up once
	verify         prometheus.Histogram
	keyStore       *prometheus.HistogramVec
	nonceStore     *prometheus.HistogramVec
	upstream       prometheus.Histogram
	upstreamErrors *prometheus.CounterVec
	bodiesRefused  *prometheus.CounterVec
}

var _ asymjwt.BodyMetrics = (*proxyMetrics)(nil)

func newProxyMetrics() *proxyMetrics {
	m := &proxyMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asymjwt_requests_total",
			Help: `Requests verified, by result: "ok" or the error kind sent in WWW-Authenticate (no_token, invalid_signature, stale, replay, unavailable, ...).`,
		}, []string{"result"}),
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "asymjwt_verify_seconds",
			Help:    "Time to verify a request's token, key store and nonce store included.",
			Buckets: fastBuckets(),
		}),
		keyStore: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asymjwt_key_store_seconds",
			Help:    `Time to look a user's keys up, by result: "ok" or "error" (the store could not answer).`,
			Buckets: fastBuckets(),
		}, []string{"result"}),
		nonceStore: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "asymjwt_nonce_store_seconds",
			Help:    `Time to record a nonce, by result: "ok", "replay" or "error" (the store could not answer).`,
			Buckets: fastBuckets(),
		}, []string{"result"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "asymjwt_upstream_seconds",
			Help:    "Time from sending a verified request upstream to its response headers.",
			Buckets: upstreamBuckets(),
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asymjwt_upstream_errors_total",
			Help: `Verified requests that got no response from upstream, by reason: "timeout" (answered 504) or "error" (502).`,
		}, []string{"reason"}),
		bodiesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asymjwt_bodies_refused_total",
			Help: `Requests whose headers verified (counted "ok" in asymjwt_requests_total) and whose body then did not match the digest its token binds, by error kind ("binding"); upstream got the body cut short.`,
		}, []string{"result"}),
	}
	m.requestsOK = m.requests.WithLabelValues("ok")
	// Zero series for what dashboards and alerts look for from the start.
	m.upstreamErrors.WithLabelValues("timeout")
	m.upstreamErrors.WithLabelValues("error")
	m.bodiesRefused.WithLabelValues("binding")
	m.registry.MustRegister(m.requests, m.verify, m.keyStore, m.nonceStore, m.upstream, m.upstreamErrors, m.bodiesRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Verified implements [asymjwt.VerifierMetrics].
func (m *proxyMetrics) Verified(result string, d time.Duration) {
	if result == "ok" {
		m.requestsOK.Inc()
	} else {
		m.requests.WithLabelValues(result).Inc()
	}
	m.verify.Observe(d.Seconds())
}

// BodyRefused implements [asymjwt.BodyMetrics].
func (m *proxyMetrics) BodyRefused(result string) {
	m.bodiesRefused.WithLabelValues(result).Inc()
}

// KeyStoreLookup implements [asymjwt.VerifierMetrics].
func (m *proxyMetrics) KeyStoreLookup(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.keyStore.WithLabelValues(result).Observe(d.Seconds())
}

// NonceStoreUse implements [asymjwt.VerifierMetrics].
func (m *proxyMetrics) NonceStoreUse(d time.Duration, err error) {
	result := "ok"
	switch {
	case errors.Is(err, asymjwt.ErrReplay):
		result = "replay"
	case err != nil:
		result = "error"
	}
	m.nonceStore.WithLabelValues(result).Observe(d.Seconds())
}

// handler serves GET /healthz (200 "ok", 503 while shutting down) and GET
// /metrics (the Prometheus text format).
func (m *proxyMetrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if m.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "shutting down\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}))
	return mux
}
