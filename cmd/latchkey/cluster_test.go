package main

// Several instances of the wired server on one PostgreSQL behind a
// round-robin reverse proxy: what SPEC 9 promises ("any number of
// stateless instances on one PostgreSQL serve one issuer").

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/config"
	"github.com/latchkey/latchkey/login/mail/mailsink"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
	"github.com/latchkey/latchkey/storage/storagetest"
)

type cluster struct {
	t      *testing.T
	url    string // the database
	cfg    *config.Config
	kr     *keyring.Keyring
	clock  *clock
	sink   *mailsink.Sink
	lb     *httptest.Server
	issuer string
	mu     sync.Mutex
	nodes  []*node
	next   atomic.Uint64
	// skew: instance i's clock runs i·skew ahead of the test's (instances'
	// clocks are never quite the same).
	skew time.Duration
	// served: which instance the proxy sent each request to, in order.
	served []hit
}

// hit is one request through the proxy: its path and the instance.
type hit struct {
	path string
	node int
}

// node is one instance with its own store (connection pool), caches and
// background work.
type node struct {
	app   *app
	srv   *server
	http  *httptest.Server
	store *storage.Store
	stop  context.CancelFunc
}

// newCluster starts n instances on one PostgreSQL schema behind a
// round-robin proxy whose URL is the issuer. PostgreSQL only: SQLite is
// one machine's database.
func newCluster(t *testing.T, n int, opts ...envOption) *cluster {
	t.Helper()
	return newClusterSkewed(t, n, 0, opts...)
}

// newClusterSkewed is newCluster with instance i's clock i·skew ahead.
func newClusterSkewed(t *testing.T, n int, skew time.Duration, opts ...envOption) *cluster {
	t.Helper()
	var pg *storagetest.Dialect
	for _, d := range storagetest.Dialects(t) {
		if d.Name == storage.DialectPostgres {
			pg = &d
		}
	}
	if pg == nil {
		t.Skipf("several instances need PostgreSQL: set %s", storagetest.EnvDatabaseURL)
	}
	sink, err := mailsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	c := &cluster{t: t, url: pg.URL(t), sink: sink, clock: &clock{now: time.Now().UTC().Truncate(time.Second)}, skew: skew}
	c.lb = httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		c.mu.Lock()
		i := int(c.next.Add(1)) % len(c.nodes)
		nd := c.nodes[i]
		c.served = append(c.served, hit{r.In.URL.Path, i})
		c.mu.Unlock()
		u, _ := url.Parse(nd.http.URL)
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}})
	c.issuer = "http://" + c.lb.Listener.Addr().String()
	cfg := config.Default()
	cfg.Issuer = c.issuer
	cfg.SMTPURL = sink.URL()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = c.url
	cfg.SecretKey = config.Secret(make([]byte, 32))
	for i := range cfg.SecretKey {
		cfg.SecretKey[i] = byte(i + 1)
	}
	cfg.Keys.Algorithm = "ES256"
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	c.cfg = cfg
	if c.kr, err = keyring.New(cfg.SecretKey.Bytes()); err != nil {
		t.Fatal(err)
	}
	for range n {
		c.addNode()
	}
	c.lb.Start()
	t.Cleanup(c.lb.Close)
	return c
}

// addNode starts one more instance (also: a restart) and waits until it
// listens for other instances' changes.
func (c *cluster) addNode() *node {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := storage.Open(ctx, c.url, storage.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		c.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a := &app{cfg: c.cfg, log: logger, store: store, kr: c.kr, closer: func() {}}
	c.mu.Lock()
	ahead := time.Duration(len(c.nodes)) * c.skew
	c.mu.Unlock()
	srv, err := newServer(ctx, a, func() time.Time { return c.clock.Now().Add(ahead) })
	if err != nil {
		c.t.Fatal(err)
	}
	ready := make(chan struct{})
	var once sync.Once
	srv.watching = func() { once.Do(func() { close(ready) }) }
	go srv.watch(ctx)
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		c.t.Fatal("instance did not attach its change listener")
	}
	nd := &node{app: a, srv: srv, http: httptest.NewServer(srv.handler), store: store, stop: cancel}
	c.t.Cleanup(func() {
		cancel()
		nd.http.Close()
		store.Close()
	})
	c.mu.Lock()
	c.nodes = append(c.nodes, nd)
	c.mu.Unlock()
	return nd
}

// eventually waits (bounded) until cond holds: for what another instance
// learns through a change notification, asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (nd *node) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get(nd.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}
