package etcd

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

// Config is the etcd driver's settings, the "store.etcd" block of the
// gateway's configuration. It fills its defaults, validates and opens
// itself; the configuration only names the driver.
type Config struct {
	// Endpoints are the cluster members' client URLs
	// ("https://etcd-0.etcd:2379"); at least one.
	Endpoints []string `json:"endpoints"`
	// Prefix is put before every key, so that deployments (or test runs)
	// can share a cluster; it ends in "/". Default DefaultPrefix.
	Prefix string `json:"prefix,omitempty"`
	// DialTimeout bounds connecting; default 5s, at most 1m.
	DialTimeout *providers.Duration `json:"dial_timeout,omitempty"`
	// RequestTimeout bounds one request; default 5s, 100ms to 1m.
	RequestTimeout *providers.Duration `json:"request_timeout,omitempty"`
	// TLS, for https endpoints: the CA that signed the members'
	// certificates (default: the system's), and a client certificate when
	// the cluster requires one.
	TLS *TLSConfig `json:"tls,omitempty"`
	// Username, with the password by reference, when the cluster has
	// authentication on.
	Username     string `json:"username,omitempty"`
	PasswordEnv  string `json:"password_env,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	// Cache is the read cache (cache.go); on unless it says otherwise.
	Cache *CacheConfig `json:"cache,omitempty"`
	// Span and DialOptions are set by the gateway, never by a file: the
	// span of the cache's wait (Options.Span), and the client's gRPC
	// options (tracing's stats handler).
	Span        store.Span        `json:"-"`
	DialOptions []grpc.DialOption `json:"-"`
}

// TLSConfig is the "store.etcd.tls" block.
type TLSConfig struct {
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// CacheConfig is the "store.etcd.cache" block.
type CacheConfig struct {
	// Enabled: reads come from the watch-fed copy. Default true.
	Enabled *bool `json:"enabled,omitempty"`
	// MaxBytes is CacheOptions.MaxBytes: default 256 MiB, at least 1 MiB.
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Wait is CacheOptions.Wait: default 1s, 10ms to 1m.
	Wait *providers.Duration `json:"wait,omitempty"`
	// CheckInterval is CacheOptions.CheckInterval: default
	// DefaultCacheCheckInterval, 0 to 100ms.
	CheckInterval *providers.Duration `json:"check_interval,omitempty"`
}

// Defaults and bounds of Config.
const (
	DefaultPrefix      = "todo-gateway/"
	DefaultDialTimeout = 5 * time.Second
	maxTimeout         = time.Minute
	minRequestTimeout  = 100 * time.Millisecond
	minCacheBytes      = 1 << 20
	minCacheWait       = 10 * time.Millisecond
	// maxCacheCheckInterval: every read may wait this long.
	maxCacheCheckInterval = 100 * time.Millisecond
)

// WithDefaults returns c with every omitted setting filled; c is not
// changed (it may be shared with another configuration).
func (c Config) WithDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.DialTimeout == nil {
		c.DialTimeout = durationOf(DefaultDialTimeout)
	}
	if c.RequestTimeout == nil {
		c.RequestTimeout = durationOf(DefaultRequestTimeout)
	}
	cache := CacheConfig{}
	if c.Cache != nil {
		cache = *c.Cache
	}
	if cache.Enabled == nil {
		on := true
		cache.Enabled = &on
	}
	if cache.MaxBytes == 0 {
		cache.MaxBytes = DefaultCacheMaxBytes
	}
	if cache.Wait == nil {
		cache.Wait = durationOf(DefaultCacheWait)
	}
	if cache.CheckInterval == nil {
		cache.CheckInterval = durationOf(DefaultCacheCheckInterval)
	}
	c.Cache = &cache
	return c
}

func durationOf(d time.Duration) *providers.Duration {
	v := providers.Duration(d)
	return &v
}

// Validate reports what is wrong with c, with paths relative to the block.
func (c Config) Validate() []providers.Problem {
	var problems []providers.Problem
	add := func(path, format string, args ...any) {
		problems = append(problems, providers.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	between := func(path string, d *providers.Duration, least, most time.Duration) {
		problems = append(problems, providers.CheckBetween(path, d, least, most)...)
	}
	if len(c.Endpoints) == 0 {
		add("endpoints", `required: the members' client URLs, such as "https://etcd-0.etcd:2379"`)
	}
	https := false
	for i, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			add(fmt.Sprintf("endpoints[%d]", i), `must be a client URL with a port and nothing after it, such as "https://etcd-0.etcd:2379"`)
			continue
		}
		https = https || u.Scheme == "https"
	}
	switch {
	case c.Prefix == "":
	case !strings.HasSuffix(c.Prefix, "/"):
		// Without it, deployment "todo" would read the keys of "todo-eu".
		add("prefix", `must end in "/" (such as "todo-gateway/prod/"), so that no deployment's keys start another's`)
	case strings.IndexByte(c.Prefix, 0) >= 0:
		add("prefix", "must not contain a NUL byte")
	}
	between("dial_timeout", c.DialTimeout, time.Millisecond, maxTimeout)
	between("request_timeout", c.RequestTimeout, minRequestTimeout, maxTimeout)
	if t := c.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			add("tls", "set cert_file and key_file together (a client certificate and its key)")
		}
		if !https {
			add("tls", "only used with https endpoints")
		}
	}
	switch {
	case c.Username == "" && (c.PasswordEnv != "" || c.PasswordFile != ""):
		add("username", "required with a password")
	case c.Username != "":
		problems = append(problems, providers.CheckSecretRef("", "password", c.PasswordEnv, c.PasswordFile)...)
	}
	if cache := c.Cache; cache != nil {
		if cache.MaxBytes != 0 && cache.MaxBytes < minCacheBytes {
			add("cache.max_bytes", "must be at least %d (1 MiB); to read from etcd only, set \"enabled\": false", minCacheBytes)
		}
		between("cache.wait", cache.Wait, minCacheWait, maxTimeout)
		between("cache.check_interval", cache.CheckInterval, 0, maxCacheCheckInterval)
	}
	return problems
}

// ClientConfig is the etcd client's configuration for c (with its
// defaults applied), with the password and the TLS files it names read.
// The store and the configuration source both connect with it.
func (c Config) ClientConfig() (clientv3.Config, error) {
	cc := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: DefaultDialTimeout,
		// Probe idle connections so that a member that died silently is
		// noticed in seconds, not when the kernel gives up on it.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// The callers report what fails through their errors, /status and
		// the metrics; the client's own chatter during a leader change is
		// noise.
		Logger:   zap.NewNop(),
		Username: c.Username,
	}
	if c.DialTimeout != nil {
		cc.DialTimeout = time.Duration(*c.DialTimeout)
	}
	if c.Username != "" {
		password, err := providers.SecretResolver{}.ReadSecret("password", c.PasswordEnv, c.PasswordFile)
		if err != nil {
			return cc, fmt.Errorf("store.etcd: %w", err)
		}
		cc.Password = password
	}
	if c.TLS != nil || slices.ContainsFunc(c.Endpoints, func(ep string) bool { return strings.HasPrefix(ep, "https:") }) {
		info := transport.TLSInfo{}
		if c.TLS != nil {
			info.TrustedCAFile, info.CertFile, info.KeyFile = c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile
		}
		tlsConfig, err := info.ClientConfig()
		if err != nil {
			return cc, fmt.Errorf("store.etcd.tls: %w", err)
		}
		cc.TLS = tlsConfig
	}
	cc.DialOptions = append(cc.DialOptions, c.DialOptions...)
	return cc, nil
}

// RequestTimeoutOrDefault is the block's request timeout, or its default.
func (c Config) RequestTimeoutOrDefault() time.Duration {
	if c.RequestTimeout != nil {
		return time.Duration(*c.RequestTimeout)
	}
	return DefaultRequestTimeout
}

// PrefixOrDefault is the block's key prefix, or its default.
func (c Config) PrefixOrDefault() string {
	if c.Prefix != "" {
		return c.Prefix
	}
	return DefaultPrefix
}

// CacheOptions is the cache the block asks for, or nil for none.
func (c Config) CacheOptions() *CacheOptions {
	c = c.WithDefaults()
	if !*c.Cache.Enabled {
		return nil
	}
	return &CacheOptions{MaxBytes: c.Cache.MaxBytes, Wait: time.Duration(*c.Cache.Wait), CheckInterval: time.Duration(*c.Cache.CheckInterval)}
}

// Describe names the cluster and prefix, for logs and messages.
func (c Config) Describe() string {
	return fmt.Sprintf("etcd %s prefix %q", strings.Join(c.Endpoints, ","), c.PrefixOrDefault())
}

// Open connects to the cluster and serves the store the block describes.
func (c Config) Open(log *slog.Logger) (*Store, error) {
	c = c.WithDefaults()
	client, err := c.ClientConfig()
	if err != nil {
		return nil, err
	}
	return Open(client, c.Prefix, Options{RequestTimeout: time.Duration(*c.RequestTimeout), Logger: log, Span: c.Span}, c.CacheOptions())
}
