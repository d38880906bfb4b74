package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	todogateway "github.com/todo-gateway/todo-gateway"
	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/tenants"
)

type serveOptions struct {
	config, listen, admin string
	log                   logFlags
}

func serveFlags() (*flag.FlagSet, *serveOptions) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	o := &serveOptions{}
	fs.StringVar(&o.config, "config", "", "the configuration `file` (JSON); default: the embedded tenants.example.json")
	fs.StringVar(&o.listen, "listen", "", "override the configuration's listen `address` (host:port; port 0 picks one)")
	fs.StringVar(&o.admin, "admin", "", "override admin.listen, the private `address` of /healthz, /readyz, /status and /metrics (host:port; port 0 picks one)")
	o.log.register(fs)
	return fs, o
}

func serveUsage(w io.Writer) {
	fs, _ := serveFlags()
	fs.SetOutput(w)
	fmt.Fprint(w, `Usage: todo-gateway serve [--config FILE] [--listen ADDR] [--admin ADDR]
                          [--log-level LEVEL] [--log-format json|text] [--log-flush DURATION]

Serve runs the gateway: every tenant's MCP endpoint at its resource URL and
its protected resource metadata at the RFC 9728 location. Without --config it
runs on the embedded example configuration (tenants.example.json).

With a bootstrap file ("tenants_from": "etcd" and an etcd store), the
tenants come from the document pushed with "todo-gateway tenants push" to
the store's etcd cluster: it is read at start (none: serve does not start),
watched, and each new revision applied as a file reload is; the file gives
only this instance's listen, admin, store, http and shutdown settings. See
"todo-gateway help tenants".

It contacts no authorization server at start: each tenant discovers its
issuer on the first token. Logs are JSON lines on stderr (--log-format text
for key=value lines). Info lines (access, audit) are written in batches, at
the latest --log-flush after they were logged; warnings and errors at once.

SIGINT or SIGTERM first drains for shutdown.drain (default 0s): /readyz
answers 503 so that load balancers stop sending requests, which are still
served. Then it stops accepting connections, lets requests in flight finish
(at most shutdown.grace, default 10s; a request still waiting on an
authorization server is answered 503 at once) and closes the store. A second
signal ends the process at once.

Flags:
`)
	printFlags(w, fs)
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs, opts := serveFlags()
	if code, done := parseFlags(fs, args, serveUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "serve", serveUsage, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}

	log, logs := newLogger(stderr, opts.log)
	// What libraries write to the standard log package or slog's default
	// (mcp-go does both) becomes lines of this log, bounded, not plain
	// text between its JSON lines.
	slog.SetDefault(mcp.LibraryLogger(log, ""))
	defer logs.Close()
	src, err := configSource(opts.config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, doc, refused, err := readAtStart(ctx, src)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	if opts.listen != "" {
		cfg.Listen = opts.listen
	}
	if opts.admin != "" {
		cfg.Admin.Listen = opts.admin
	}
	if cfg.Admin.Listen == cfg.Listen && !strings.HasSuffix(cfg.Listen, ":0") {
		return usageError(stderr, "serve", serveUsage, "the admin address must differ from the listen address ("+cfg.Listen+"): the admin endpoints never share the public listener")
	}

	gw, err := startGateway(ctx, cfg, doc.Version(), doc.Revision, log, nil)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	if refused != nil {
		gw.startRefused = refused
		log.Error("the newest tenants document in etcd does not load: serving the newest one that does; push a document that loads (todo-gateway check --config FILE, then tenants push)",
			"refused_revision", refused.Revision, "reason", refused.Reason, "serving_revision", doc.Revision)
	}
	if opts.config == "" {
		// The example is for trying the gateway out: its issuers are
		// placeholders and a missing secret is expected, not an error.
		log.Info("running on the embedded example configuration (tenants.example.json): its issuers are placeholders; run with --config FILE naming your own",
			"tenants_without_verifier", problemStrings(gw.startProblems))
	} else {
		logProblems(log, gw.startProblems)
	}
	if opts.config != "" {
		if err := gw.watchConfig(ctx, src); err != nil {
			log.Error("cannot watch the configuration; reload needs a restart", "err", err)
		}
	} else {
		// Nothing to reload: SIGHUP must not end the process.
		signal.Ignore(syscall.SIGHUP)
	}
	fmt.Fprintf(stdout, "todo-gateway listening on http://%s with %d tenants\n", gw.Addr(), gw.edge.Current().Len())
	<-ctx.Done()
	// From here a second SIGINT or SIGTERM ends the process at once.
	stop()
	err = gw.Stop()
	gw.waitAnnounced()
	if err != nil {
		log.Error("shutdown", "err", err)
		return exitFail
	}
	return exitOK
}

// configSource is the --config file; or, when that file is a bootstrap
// (tenants_from "etcd"), the tenants document in its store's etcd cluster;
// or the embedded example without --config. An etcd source must be closed.
func configSource(path string) (tenants.Source, error) {
	if path == "" {
		return tenants.StaticSource{Name: "embedded configuration", Data: todogateway.ExampleConfig}, nil
	}
	file := tenants.FileSource{Path: path}
	cfg, _, err := tenants.Read(context.Background(), file)
	if err != nil || cfg.TenantsFrom != tenants.TenantsFromEtcd {
		return file, nil // serve reads it again and reports what is wrong
	}
	return tenants.OpenEtcdSource(cfg)
}

// gateway is the running program: store, tenants and HTTP server. Tests start
// it on port 0 exactly as serve does.
type gateway struct {
	cfg *tenants.Config // as loaded at start; reloads change only the tenants
	// tracing is nil unless the environment asks for traces.
	tracing *tracing
	// startRefused is the newest tenants document in etcd when it did not
	// load at start (an older one is served).
	startRefused *tenants.Refusal
	// startProblems name the tenants whose verifier could not be built at
	// start; the caller logs them.
	startProblems []tenants.Problem
	reloader      *reloader // nil when running on the embedded configuration
	edge          *mcp.Gateway
	store         backend
	server        *http.Server
	listener      net.Listener
	done          chan error
	// admin serves health, status and metrics on its own private listener.
	admin         *http.Server
	adminListener net.Listener
	adminDone     chan error
	// draining is set once shutdown has begun: /readyz answers 503.
	draining *atomic.Bool
	log      *slog.Logger

	shutdownOnce sync.Once
	shutdownErr  error
}

// startGateway opens the store, builds the tenants of cfg (whose version
// /status shows) and serves on ln, or on cfg.Listen when ln is nil. A test
// passes its own listener so that resource URLs can name the port before
// the gateway starts.
func startGateway(ctx context.Context, cfg *tenants.Config, version string, revision int64, log *slog.Logger, ln net.Listener) (g *gateway, err error) {
	// On failure, release what was acquired, newest first.
	var undo []func() error
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if ln != nil {
		undo = append(undo, ln.Close)
	}
	prom := newMetrics()
	tr, err := startTracing(ctx, version)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() error { return tr.shutdown(context.Background()) })
	st, err := openStore(cfg.Store, log, tr.storeHooks(prom.observeCommit))
	if err != nil {
		return nil, err
	}
	undo = append(undo, st.Close)
	// One registry for every generation: tenants on one issuer share its
	// discovery document and key set, across reloads too.
	issuers := providers.NewIssuers()
	signer, err := assertionSigner(cfg, log)
	if err != nil {
		return nil, err
	}
	providerOpts := []providers.Option{providers.WithLogger(log), providers.WithMetrics(prom.providers), providers.WithIssuers(issuers)}
	if tr != nil {
		providerOpts = append(providerOpts, providers.WithHTTPClient(tr.client(providers.DefaultHTTPClient())))
	}
	edge := mcp.New(store.Timed(st, prom.observeStore, tr.storeSpan(cfg.Store.Driver)), mcp.Options{
		NewVerifier:    mcp.ProviderVerifier(providerOpts...),
		Tracing:        tr.tracerProvider(),
		Logger:         log,
		AllowedOrigins: cfg.HTTP.AllowedOrigins,
		TrustedProxies: cfg.HTTP.TrustedProxyRanges(),
		BodyLimit:      cfg.HTTP.BodyLimit,
		Metrics:        prom.edge,
		Signer:         signer,
		// A reload that replaces an upstream tenant lets its open streams
		// run this long, as a shutdown lets requests in flight finish.
		RetireGrace: time.Duration(*cfg.Shutdown.Grace),
	})
	undo = append(undo, func() error { return edge.Close(context.Background()) })
	change, err := edge.ApplyRevision(ctx, cfg, version, revision)
	if err != nil {
		return nil, err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, err
		}
		undo = append(undo, ln.Close)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	maxConns := cfg.HTTP.MaxConnections
	if maxConns == 0 {
		maxConns = mcp.DefaultMaxConnections()
	}
	if allowed, known := mcp.MaxConnectionsAllowed(); known && maxConns > allowed {
		log.Warn("http.max_connections is more than the open-file limit allows: lowered, so that connections cannot take the descriptors the store, the admin listener and the authorization servers need; raise the limit (ulimit -n, LimitNOFILE) to allow more",
			"configured", maxConns, "using", allowed)
		maxConns = allowed
	}
	ln = mcp.LimitConnections(ln, mcp.ConnLimits{Max: maxConns, PerSource: cfg.HTTP.MaxConnectionsPerSource,
		Trusted: cfg.HTTP.TrustedProxyRanges(), Linger: mcp.DefaultLinger(cfg.HTTP.BodyLimit)}, prom.edge)
	prom.watchStore(st.ready)
	var storeCache func() any
	if st.cache != nil {
		if _, ok := st.cache(); ok {
			prom.watchCache(st.cache)
			storeCache = func() any { stats, _ := st.cache(); return stats }
		}
	}
	draining := &atomic.Bool{}
	g = &gateway{
		tracing:       tr,
		draining:      draining,
		adminListener: adminLn,
		admin: &http.Server{
			Handler: mcp.NewAdmin(edge, mcp.AdminOptions{
				Draining: draining.Load, StoreCheck: st.ready, StoreName: st.description, StoreCache: storeCache, Issuers: issuers.List, Metrics: prom.handler(),
				Backup: st.backup,
			}),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		cfg:           cfg,
		startProblems: change.Problems,
		edge:          edge,
		store:         st,
		listener:      ln,
		log:           log,
		done:          make(chan error, 1),
		adminDone:     make(chan error, 1),
		server: &http.Server{
			Handler:           edge,
			ConnContext:       mcp.ConnContext, // lingering closes
			ConnState:         mcp.ConnState,   // evicting idle connections
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	// A shutdown cancels the waits on authorization servers at once (503)
	// rather than letting a hanging one hold it for the whole grace.
	g.server.RegisterOnShutdown(edge.StopWaiting)
	go func() { g.done <- g.server.Serve(ln) }()
	go func() { g.adminDone <- g.admin.Serve(adminLn) }()
	log.Info("serving", "addr", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"tenants", edge.Current().Len(), "store", st.description, "config", version, "revision", revision, "max_connections", maxConns)
	return g, nil
}

// readAtStart reads the configuration to start with: from etcd, the
// newest document that loads (tenants.EtcdSource.ReadValid), so that one
// that does not (pushed by a newer gateway, or by hand) leaves a
// restarted instance serving what it served, not down; refused says so.
func readAtStart(ctx context.Context, src tenants.Source) (*tenants.Config, tenants.Document, *tenants.Refusal, error) {
	if es, ok := src.(*tenants.EtcdSource); ok {
		return es.ReadValid(ctx)
	}
	cfg, doc, err := tenants.Read(ctx, src)
	return cfg, doc, nil, err
}

// logProblems reports the tenants whose verifier could not be built: they
// answer 503 until their configuration is fixed.
func logProblems(log *slog.Logger, problems []tenants.Problem) {
	for _, p := range problems {
		log.Error("tenant cannot verify tokens until its configuration is fixed", "problem", p.String())
	}
}

func problemStrings(problems []tenants.Problem) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p.String()
	}
	return out
}

// watchConfig reloads the tenants from src on SIGHUP and when it changes.
func (g *gateway) watchConfig(ctx context.Context, src tenants.Source) error {
	g.reloader = &reloader{src: src, gw: g, log: g.log}
	return g.reloader.watch(ctx)
}

// instance names this process in etcd's record of what each instance
// serves: the host name and the public listener's address, unique among
// the instances of one deployment.
func (g *gateway) instance() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return host + "/" + g.Addr()
}

// waitAnnounced waits (briefly) until the instance's etcd record is
// removed, once the serve context has ended.
func (g *gateway) waitAnnounced() {
	if g.reloader == nil || g.reloader.announced == nil {
		return
	}
	select {
	case <-g.reloader.announced:
	case <-time.After(2 * time.Second):
	}
}

// AdminAddr is the admin listener's address.
func (g *gateway) AdminAddr() string { return g.adminListener.Addr().String() }

// Addr is the address actually listened on (useful with port 0).
func (g *gateway) Addr() string { return g.listener.Addr().String() }

// Stop is the whole shutdown on a signal: drain (report not ready for
// shutdown.drain while serving as usual, so that load balancers move
// traffic away), then Shutdown within shutdown.grace.
func (g *gateway) Stop() error {
	g.draining.Store(true)
	if drain := time.Duration(*g.cfg.Shutdown.Drain); drain > 0 {
		g.log.Info("draining: /readyz answers 503 while requests are still served", "drain", drain.String())
		time.Sleep(drain)
	}
	grace := time.Duration(*g.cfg.Shutdown.Grace)
	g.log.Info("shutting down", "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return g.Shutdown(ctx)
}

// Shutdown stops accepting, waits for requests in flight within ctx, closes
// the tenants' MCP servers and verifiers (retired ones included), and closes
// the store last, so no acknowledged write is cut short.
// Later calls return the first call's result.
func (g *gateway) Shutdown(ctx context.Context) error {
	g.shutdownOnce.Do(func() {
		err := errors.Join(g.server.Shutdown(ctx), g.admin.Shutdown(ctx))
		for _, done := range []chan error{g.done, g.adminDone} {
			if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
				err = errors.Join(err, serveErr)
			}
		}
		storeErr := g.store.Close()
		if errors.Is(storeErr, store.ErrClosed) { // closed already: nothing left to lose
			storeErr = nil
		}
		g.shutdownErr = errors.Join(err, g.edge.Close(ctx), storeErr, g.tracing.shutdown(ctx))
	})
	return g.shutdownErr
}

// assertionSigner is the signer of the identity assertions upstream
// tenants send: the keys of assertion.key_files, read at start (a new key
// takes a restart: see docs/upstream.md on rotating it), or a key made now when
// none is configured, which is right for one instance only.
func assertionSigner(cfg *tenants.Config, log *slog.Logger) (*upstream.Signer, error) {
	var keys []crypto.Signer
	for i, f := range cfg.Assertion.KeyFiles {
		k, err := upstream.LoadKeyFile(f)
		if err != nil {
			return nil, fmt.Errorf("assertion.key_files[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		k, err := upstream.GenerateKey()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		if cfg.Store.Driver == tenants.DriverEtcd && usesAssertions(cfg) {
			log.Warn("assertion.key_files is not set: this instance signs upstream assertions with a key of its own, which the other instances do not publish; give every instance the same key files")
		}
	}
	return upstream.NewSigner(nil, keys...)
}

// usesAssertions reports whether a tenant of cfg sends assertions (with
// tenants in etcd, the pushed tenants may: assume so).
func usesAssertions(cfg *tenants.Config) bool {
	if cfg.TenantsFrom == tenants.TenantsFromEtcd {
		return true
	}
	for _, t := range cfg.Tenants {
		if t.Server.IsUpstream() && t.Server.Identity.Mode == upstream.ModeAssertion {
			return true
		}
	}
	return false
}
