// Package metrics holds every Prometheus metric Latchkey exports, in one
// place, on one registry of its own (no global registration), served by
// Handler on the metrics listener (metrics.addr) — never on the public
// port.
//
// The packages that do the work never import Prometheus: op and login
// each declare a small recorder interface (op.Metrics, login.Metrics),
// and *Metrics implements both; cmd wires it in. Gauges that read state
// (the signing key's age, the database pools, queue depths) are collected
// at scrape time from functions cmd hands over, so nothing polls.
//
// It lives under cmd/latchkey (internal) so that no other package can
// reach for it instead of declaring its recorder interface.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const ns = "latchkey"

// Metrics is the registry and the metrics written from the request paths.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	signins  *prometheus.CounterVec
	codes    *prometheus.CounterVec
	// outboxes is registered at the first WatchOutbox.
	outboxMu  sync.Mutex
	outboxes  *outboxCollector
	grants    *prometheus.CounterVec
	reuse     prometheus.Counter
	throttle  *prometheus.CounterVec
	webhook   *prometheus.CounterVec
	abandoned prometheus.Counter
	hashCPU   prometheus.Histogram
}

// New registers the metrics, the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern, method and status class (2xx, 3xx, 4xx, 5xx).",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "signins_total",
			Help: "Sign-in outcomes: success (by second step and resulting acr), wrong_password, wrong_code, throttled, disabled, abandoned.",
		}, []string{"outcome", "second_step", "acr"}),
		codes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "email_codes_total",
			Help: "Email codes by purpose and stage (queued, sent, failed).",
		}, []string{"purpose", "stage"}),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "token_grants_total",
			Help: "Token endpoint requests by grant type and result (ok, invalid_client, refused, error).",
		}, []string{"grant", "result"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "refresh_token_reuse_total",
			Help: "Rotated refresh tokens presented again (each revokes its whole grant): a stolen token, or a client bug.",
		}),
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "throttle_hits_total",
			Help: "Attempts refused by the throttle, by scope (pwd, code, forgot, signup, device, acct-totp).",
		}, []string{"scope"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "webhook_deliveries_total",
			Help: "Security-event webhook deliveries by result (delivered, retry, failed).",
		}, []string{"result"}),
		hashCPU: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "password_hash_cpu_seconds",
			Help:    "CPU time of each argon2id run (password check, new password, or the equal-cost check for an unknown account), measured on its thread: _sum is the CPU the hashing took, the rest of process_cpu_seconds_total everything else.",
			Buckets: []float64{.005, .01, .02, .04, .08, .16, .32},
		}),
	}
	m.abandoned = m.signins.WithLabelValues("abandoned", "", "")
	m.reg.MustRegister(m.requests, m.signins, m.codes, m.grants, m.reuse, m.throttle, m.webhook, m.hashCPU,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: ns}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one HTTP request (access.Options.Observe).
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(status/100)+"xx").Observe(d.Seconds())
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// SignIn implements login.Metrics.
func (m *Metrics) SignIn(outcome, secondStep, acr string) {
	m.signins.WithLabelValues(outcome, secondStep, acr).Inc()
}

// Abandoned counts sign-ins that identified a user and never finished
// (swept when their auth request expired).
func (m *Metrics) Abandoned(n int) { m.abandoned.Add(float64(n)) }

// EmailCode implements login.Metrics.
func (m *Metrics) EmailCode(purpose, stage string) { m.codes.WithLabelValues(purpose, stage).Inc() }

// ThrottleHit implements login.Metrics.
func (m *Metrics) ThrottleHit(scope string) { m.throttle.WithLabelValues(scope).Inc() }

// TokenGrant implements op.Metrics.
func (m *Metrics) TokenGrant(grant, result string) { m.grants.WithLabelValues(grant, result).Inc() }

// RefreshReuse implements op.Metrics.
func (m *Metrics) RefreshReuse() { m.reuse.Inc() }

// PasswordHash records one argon2id run's CPU time
// (factor.PasswordHasher.Observe).
func (m *Metrics) PasswordHash(cpu time.Duration) { m.hashCPU.Observe(cpu.Seconds()) }

// WebhookDelivery counts a delivery attempt's result.
func (m *Metrics) WebhookDelivery(result string) { m.webhook.WithLabelValues(result).Inc() }

// WatchSigningKey exports the age of the signing key in use, read at
// scrape time from key (op.OP.SigningKey).
func (m *Metrics) WatchSigningKey(key func() (kid string, since time.Time, ok bool), now func() time.Time) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "signing_key_age_seconds",
		Help: "How long the current signing key has been signing (rotation should keep it under keys.rotation_period).",
	}, func() float64 {
		_, since, ok := key()
		if !ok {
			return 0
		}
		return now().Sub(since).Seconds()
	}))
}

// WatchDatabase exports the database pools' statistics (gorm's *sql.DB
// stats), read at scrape time.
func (m *Metrics) WatchDatabase(stats func() map[string]sql.DBStats) {
	m.reg.MustRegister(&poolCollector{stats: stats})
}

// OutboxStats is what a durable queue (the mail outbox, the webhook's
// deliveries) tells about its backlog: the number of items not yet
// delivered and when the oldest was queued (zero when none).
type OutboxStats interface {
	OutboxStats(ctx context.Context) (pending int, oldest time.Time, err error)
}

// WatchOutbox exports a queue's depth and the age of its oldest item,
// labelled queue=name, read at scrape time. Call it only for queues that
// exist: a queue nobody provides is not exported at all.
func (m *Metrics) WatchOutbox(name string, q OutboxStats, now func() time.Time) {
	m.outboxMu.Lock()
	defer m.outboxMu.Unlock()
	if m.outboxes == nil {
		m.outboxes = &outboxCollector{now: now}
		m.reg.MustRegister(m.outboxes)
	}
	m.outboxes.add(name, q)
}

var (
	poolDescs = map[string]*prometheus.Desc{
		"open":     prometheus.NewDesc(ns+"_db_connections_open", "Open database connections, by pool.", []string{"pool"}, nil),
		"in_use":   prometheus.NewDesc(ns+"_db_connections_in_use", "Database connections in use, by pool.", []string{"pool"}, nil),
		"idle":     prometheus.NewDesc(ns+"_db_connections_idle", "Idle database connections, by pool.", []string{"pool"}, nil),
		"max":      prometheus.NewDesc(ns+"_db_connections_max", "Maximum open database connections, by pool.", []string{"pool"}, nil),
		"waits":    prometheus.NewDesc(ns+"_db_wait_total", "Times a request waited for a database connection, by pool.", []string{"pool"}, nil),
		"wait_sec": prometheus.NewDesc(ns+"_db_wait_seconds_total", "Time spent waiting for a database connection, by pool.", []string{"pool"}, nil),
	}
	outboxPending = prometheus.NewDesc(ns+"_outbox_pending", "Items queued and not yet delivered, by queue.", []string{"queue"}, nil)
	outboxAge     = prometheus.NewDesc(ns+"_outbox_oldest_age_seconds", "Age of the oldest undelivered item, by queue (0 when empty).", []string{"queue"}, nil)
)

type poolCollector struct{ stats func() map[string]sql.DBStats }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range poolDescs {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for pool, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(poolDescs["open"], prometheus.GaugeValue, float64(s.OpenConnections), pool)
		ch <- prometheus.MustNewConstMetric(poolDescs["in_use"], prometheus.GaugeValue, float64(s.InUse), pool)
		ch <- prometheus.MustNewConstMetric(poolDescs["idle"], prometheus.GaugeValue, float64(s.Idle), pool)
		ch <- prometheus.MustNewConstMetric(poolDescs["max"], prometheus.GaugeValue, float64(s.MaxOpenConnections), pool)
		ch <- prometheus.MustNewConstMetric(poolDescs["waits"], prometheus.CounterValue, float64(s.WaitCount), pool)
		ch <- prometheus.MustNewConstMetric(poolDescs["wait_sec"], prometheus.CounterValue, s.WaitDuration.Seconds(), pool)
	}
}

// outboxCollector reads every watched queue at scrape time (one
// collector: the queues share their metrics' descriptions).
type outboxCollector struct {
	now    func() time.Time
	mu     sync.Mutex
	queues []namedQueue
}

type namedQueue struct {
	name string
	q    OutboxStats
}

func (c *outboxCollector) add(name string, q OutboxStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queues = append(c.queues, namedQueue{name, q})
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPending
	ch <- outboxAge
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	queues := slices.Clone(c.queues)
	c.mu.Unlock()
	for _, nq := range queues {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, oldest, err := nq.q.OutboxStats(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(outboxPending, err)
			continue
		}
		age := 0.0
		if !oldest.IsZero() {
			age = max(c.now().Sub(oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(outboxPending, prometheus.GaugeValue, float64(n), nq.name)
		ch <- prometheus.MustNewConstMetric(outboxAge, prometheus.GaugeValue, age, nq.name)
	}
}
