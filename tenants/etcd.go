package tenants

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/todo-gateway/todo-gateway/providers"
)

// ClientConfig turns the etcd block (with its defaults applied) into the
// etcd client's configuration, reading the password and the TLS files it
// names. The store and the configuration source both connect with it, so
// a deployment's etcd settings are written, and read, in one place.
func (e *EtcdConfig) ClientConfig() (clientv3.Config, error) {
	c := clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: DefaultEtcdDialTimeout,
		// Probe idle connections so that a member that died silently is
		// noticed in seconds, not when the kernel gives up on it.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// The callers report what fails through their errors, /status and
		// the metrics; the client's own chatter during a leader change is
		// noise.
		Logger:   zap.NewNop(),
		Username: e.Username,
	}
	if e.DialTimeout != nil {
		c.DialTimeout = time.Duration(*e.DialTimeout)
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

// requestTimeout is the block's request timeout, or its default.
func (e *EtcdConfig) requestTimeout() time.Duration {
	if e.RequestTimeout != nil {
		return time.Duration(*e.RequestTimeout)
	}
	return DefaultEtcdRequestTimeout
}

// prefix is the block's key prefix, or its default.
func (e *EtcdConfig) prefix() string {
	if e.Prefix != "" {
		return e.Prefix
	}
	return DefaultEtcdPrefix
}
