package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/todo-gateway/todo-gateway/tenants"
)

const (
	// retireGrace is how long a replaced snapshot's verifiers stay open, so
	// requests that loaded it before the swap finish with working caches.
	retireGrace = 30 * time.Second
	// settleDelay coalesces the bursts of events an editor's save makes
	// (write, chmod, rename) into one reload.
	settleDelay = 200 * time.Millisecond
)

// reloader rebuilds the tenant set from the configuration file and swaps it
// in: build → validate → swap → close the old. A file that does not load
// never replaces the running set.
type reloader struct {
	path string
	gw   *gateway
	log  *slog.Logger

	mu      sync.Mutex // one reload at a time
	retired []*time.Timer
	closing []func()
}

// reload loads the file and swaps the new tenant set in. Tenants whose
// configuration is unchanged keep their verifier caches and their MCP server;
// removed tenants stop being routed (their data stays in the store).
func (r *reloader) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := tenants.Load(r.path)
	if err != nil {
		var ve *tenants.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				r.log.Error("reload refused: configuration problem", "problem", p.String())
			}
		}
		r.log.Error("reload refused; the running tenants keep serving", "config", r.path, "err", err)
		return err
	}
	if cfg.Listen != r.gw.cfg.Listen || !reflect.DeepEqual(cfg.Store, r.gw.cfg.Store) || !reflect.DeepEqual(cfg.HTTP, r.gw.cfg.HTTP) {
		r.log.Warn("listen, store and http settings changed in the file take effect only on restart; tenants are reloaded")
	}
	old := r.gw.registry.Load()
	next, problems, err := tenants.Build(cfg, old, r.gw.providerOpts...)
	if err != nil { // Load validated already; kept for safety
		r.log.Error("reload refused", "err", err)
		return err
	}
	for _, p := range problems {
		r.log.Error("tenant cannot verify tokens until its configuration is fixed", "problem", p.String())
	}
	if err := r.gw.store.EnsureTenants(ctx, tenantIDs(next)...); err != nil {
		next.CloseReplaced(old)
		r.log.Error("reload refused: tenant storage", "err", err)
		return fmt.Errorf("tenant storage: %w", err)
	}
	r.gw.registry.Swap(next)
	r.gw.edge.Forget(next)
	r.retire(old, next)
	added, changed, removed, kept := diff(old, next)
	r.log.Info("tenants reloaded", "config", r.path, "tenants", next.Len(),
		"added", added, "changed", changed, "removed", removed, "unchanged", kept)
	return nil
}

// retire closes what old holds and next did not carry over, after a grace
// period for the requests still using old.
func (r *reloader) retire(old, next *tenants.Snapshot) {
	closeOld := func() {
		if err := old.CloseReplaced(next); err != nil {
			r.log.Warn("closing replaced tenants", "err", err)
		}
	}
	r.closing = append(r.closing, closeOld)
	r.retired = append(r.retired, time.AfterFunc(retireGrace, closeOld))
}

// stop closes retired snapshots now instead of after their grace period.
func (r *reloader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, t := range r.retired {
		if t.Stop() {
			r.closing[i]()
		}
	}
	r.retired, r.closing = nil, nil
}

// watch reloads on SIGHUP and whenever the file changes, until ctx ends. It
// watches the file's directory, not the file: editors and configuration
// managers replace a file by renaming another over it, which ends a watch on
// the file itself.
func (r *reloader) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir, name := filepath.Split(r.path)
	if dir == "" {
		dir = "."
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer w.Close()
		defer signal.Stop(hup)
		var settle <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.log.Info("SIGHUP: reloading", "config", r.path)
				r.reload(ctx)
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Base(ev.Name) == name && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					settle = time.After(settleDelay)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				r.log.Warn("watching the configuration", "err", err)
			case <-settle:
				settle = nil
				r.reload(ctx)
			}
		}
	}()
	return nil
}

func tenantIDs(s *tenants.Snapshot) []string {
	ids := make([]string, 0, s.Len())
	for _, t := range s.Tenants() {
		ids = append(ids, t.ID)
	}
	return ids
}

// diff names the tenants a reload added, changed, removed and kept.
func diff(old, next *tenants.Snapshot) (added, changed, removed []string, unchanged int) {
	for _, t := range next.Tenants() {
		switch prev, ok := old.Tenant(t.ID); {
		case !ok:
			added = append(added, t.ID)
		case prev != t:
			changed = append(changed, t.ID)
		default:
			unchanged++
		}
	}
	for _, t := range old.Tenants() {
		if _, ok := next.Tenant(t.ID); !ok {
			removed = append(removed, t.ID)
		}
	}
	return added, changed, removed, unchanged
}
