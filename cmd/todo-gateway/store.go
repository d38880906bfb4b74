package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/store/etcd"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// backend is an open store with what the wiring needs besides the Store
// interface: its readiness check and a description for the log.
type backend struct {
	store.Store
	// ready reports whether the backend can serve now (/readyz).
	ready       func(context.Context) error
	description string
	// backup writes a consistent copy (bbolt); nil for etcd, which is
	// backed up with etcdctl snapshot save.
	backup func(ctx context.Context, start func(size int64) io.Writer) (int64, error)
}

// openStore opens the backend that the store block's driver names, from that
// driver's own block. This switch is the one place a new driver is wired in.
func openStore(cfg tenants.StoreConfig, log *slog.Logger) (backend, error) {
	switch cfg.Driver {
	case tenants.DriverBolt:
		b := cfg.Bolt
		if dir := filepath.Dir(b.Path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return backend{}, fmt.Errorf("store directory: %w", err)
			}
		}
		var batchDelay time.Duration
		if b.BatchDelay != nil {
			batchDelay = time.Duration(*b.BatchDelay)
		}
		st, err := bolt.Open(b.Path, bolt.Options{BatchDelay: batchDelay})
		if err != nil {
			return backend{}, err
		}
		return backend{Store: st, ready: st.Ping, description: "bbolt " + b.Path, backup: st.Backup}, nil
	case tenants.DriverEtcd:
		e := cfg.Etcd
		client, err := etcdClientConfig(e)
		if err != nil {
			return backend{}, err
		}
		st, err := etcd.Open(client, e.Prefix, etcd.Options{RequestTimeout: time.Duration(*e.RequestTimeout), Logger: log.With("store", "etcd")})
		if err != nil {
			return backend{}, err
		}
		return backend{Store: st, ready: st.Ping, description: fmt.Sprintf("etcd %s prefix %q", strings.Join(e.Endpoints, ","), e.Prefix)}, nil
	}
	// Validation refuses unknown drivers; this is for a Config built by hand.
	return backend{}, fmt.Errorf("unknown store driver %q", cfg.Driver)
}

// etcdClientConfig turns the etcd block into the client's configuration,
// reading the password and the TLS files it names.
func etcdClientConfig(e *tenants.EtcdConfig) (clientv3.Config, error) {
	c := clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: time.Duration(*e.DialTimeout),
		// Probe idle connections so that a member that died silently is
		// noticed in seconds, not when the kernel gives up on it.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// The store reports what fails through its errors, /status and the
		// metrics; the client's own chatter during a leader change is noise.
		Logger:   zap.NewNop(),
		Username: e.Username,
	}
	if e.Username != "" {
		password, err := providers.SecretResolver{}.ReadSecret("password", e.PasswordEnv, e.PasswordFile)
		if err != nil {
			return c, fmt.Errorf("store.etcd: %w", err)
		}
		c.Password = password
	}
	if e.TLS != nil || slices.ContainsFunc(e.Endpoints, func(ep string) bool { return strings.HasPrefix(ep, "https:") }) {
		info := transport.TLSInfo{}
		if e.TLS != nil {
			info.TrustedCAFile, info.CertFile, info.KeyFile = e.TLS.CAFile, e.TLS.CertFile, e.TLS.KeyFile
		}
		tlsConfig, err := info.ClientConfig()
		if err != nil {
			return c, fmt.Errorf("store.etcd.tls: %w", err)
		}
		c.TLS = tlsConfig
	}
	return c, nil
}
