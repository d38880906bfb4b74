package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/todo-gateway/todo-gateway/tenants"
)

// settleDelay coalesces the bursts of events an editor's save or a
// ConfigMap update makes (write, chmod, rename, symlink swap) into one
// reload; maxSettle bounds it, so that events that never stop (a file
// rewritten in a loop) still let the configuration apply.
const (
	settleDelay = 200 * time.Millisecond
	maxSettle   = 2 * time.Second
)

// reloader re-reads the configuration source and applies it through the
// edge (build → ensure store → swap → retire, in mcp.Gateway.Apply). A
// configuration that does not load never replaces the running one.
type reloader struct {
	src tenants.Source
	gw  *gateway
	log *slog.Logger

	mu sync.Mutex // one reload at a time
	// seen is the version last applied or refused as invalid, so that
	// events which did not change the bytes cost one read and no log line.
	// A version whose apply failed otherwise (the store) is tried again.
	seen string
	// applied receives what the instance serves after each apply, when the
	// source is etcd: the instance records it there for "tenants status".
	applied chan tenants.Applied
	// announced is closed once the record is removed at shutdown.
	announced <-chan struct{}
	// restartPending lists the restart-only settings whose change was last
	// reported, so that later reloads do not repeat the same warning.
	restartPending []string
	// refused is the newest document that did not load, while the
	// instance serves an older one; recorded for "tenants status".
	refused *tenants.Refusal
}

// reload reads the source and applies it when its bytes changed since they
// were last read, or always when force is set (SIGHUP: a tenant whose
// verifier could not be built is retried, say after its secret file was
// written). Unchanged tenants keep their verifier caches and MCP server;
// removed tenants stop being routed (their data stays in the store).
func (r *reloader) reload(ctx context.Context, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	doc, err := r.src.Read(ctx)
	if err != nil {
		r.log.Error("reload refused: cannot read the configuration; the running tenants keep serving", "config", r.src.String(), "err", err)
		return err
	}
	version := doc.Version()
	if !force && version == r.seen {
		return nil
	}
	cfg, err := r.src.Parse(doc.Data)
	if err != nil {
		r.seen = version // the same bytes will not parse next time either
		var ve *tenants.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				r.log.Error("reload refused: configuration problem", "problem", p.String())
			}
		}
		r.log.Error("reload refused; the running tenants keep serving", "config", r.src.String(), "version", version, "revision", doc.Revision, "err", err)
		r.refused = &tenants.Refusal{Revision: doc.Revision, Reason: err.Error()}
		r.announce()
		return err
	}
	if pending := cfg.Process.Changed(r.gw.cfg.Process); !slices.Equal(pending, r.restartPending) {
		r.restartPending = pending
		if len(pending) > 0 {
			r.log.Warn("settings changed in the configuration take effect only on restart; the tenants are reloaded", "settings", pending)
		}
	}
	change, err := r.gw.edge.ApplyRevision(ctx, cfg, version, doc.Revision)
	if err != nil {
		r.log.Error("reload refused; the running tenants keep serving", "config", r.src.String(), "version", version, "revision", doc.Revision, "err", err)
		return err
	}
	r.seen = version
	r.refused = nil
	r.announce()
	logProblems(r.log, change.Problems)
	r.log.Info("tenants reloaded", "config", r.src.String(), "version", version, "revision", doc.Revision, "tenants", r.gw.edge.Current().Len(),
		"added", orEmpty(change.Added), "changed", orEmpty(change.Changed), "removed", orEmpty(change.Removed), "unchanged", change.Unchanged)
	return nil
}

// orEmpty logs no tenants as [], not null.
func orEmpty(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// announce sends what the instance now serves to the etcd record, replacing
// a value not yet recorded.
func (r *reloader) announce() {
	if r.applied == nil {
		return
	}
	gen := r.gw.edge.Current()
	a := tenants.Applied{Instance: r.gw.instance(), Admin: r.gw.AdminAddr(), Revision: gen.Revision(), Version: gen.Version(), AppliedAt: time.Now().UTC(),
		Refused: r.refused}
	for {
		select {
		case r.applied <- a:
			return
		default:
			select {
			case <-r.applied: // drop the stale value
			default:
			}
		}
	}
}

// watch reloads on SIGHUP and whenever the source says it may have changed,
// until ctx ends.
func (r *reloader) watch(ctx context.Context) error {
	r.seen = r.gw.edge.Current().Version()
	r.refused = r.gw.startRefused // the newest document, which did not load at start
	events := make(chan struct{}, 1)
	changed := func() {
		select {
		case events <- struct{}{}:
		default: // one pending event is enough
		}
	}
	problem := func(err error) { r.log.Warn("watching the configuration", "config", r.src.String(), "err", err) }
	if err := r.src.Watch(ctx, changed, problem); err != nil {
		return err
	}
	if es, ok := r.src.(*tenants.EtcdSource); ok {
		r.applied = make(chan tenants.Applied, 1)
		r.announced = es.Announce(ctx, r.gw.instance(), r.applied,
			func(err error) { r.log.Warn("etcd", "config", r.src.String(), "err", err) })
		r.announce()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		var settle <-chan time.Time
		var first time.Time // of the events the pending reload waits out
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.log.Info("SIGHUP: reloading", "config", r.src.String())
				r.reload(ctx, true)
			case <-events:
				if settle == nil {
					first = time.Now()
				}
				settle = time.After(min(settleDelay, time.Until(first.Add(maxSettle))))
			case <-settle:
				settle = nil
				r.reload(ctx, false)
			}
		}
	}()
	return nil
}
