package tenants

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Store drivers. Each has its own block inside "store", named after it.
const (
	// DriverBolt is the local single-file store (one process per file).
	DriverBolt = "bbolt"
	// DriverEtcd is an etcd cluster that many gateway instances share.
	DriverEtcd = "etcd"
)

// Defaults and bounds of the etcd block.
const (
	DefaultEtcdPrefix         = "todo-gateway/"
	DefaultEtcdDialTimeout    = 5 * time.Second
	DefaultEtcdRequestTimeout = 5 * time.Second
	maxEtcdTimeout            = time.Minute
	minEtcdRequestTimeout     = 100 * time.Millisecond
)

// DefaultStorePath is where the bbolt driver keeps its file by default.
const DefaultStorePath = "data/todos.db"

// maxBatchDelay bounds BoltConfig.BatchDelay: every acknowledged write may
// wait this long.
const maxBatchDelay = time.Second

// StoreConfig is the "store" block: which backend keeps the todos, and that
// backend's own settings in a block named after the driver:
//
//	"store": {"driver": "bbolt", "bbolt": {"path": "data/todos.db"}}
//
// It cannot change on reload.
type StoreConfig struct {
	// Driver is the backend: "bbolt" (default) or "etcd".
	Driver string `json:"driver,omitempty"`
	// Bolt is the bbolt driver's block; after defaults it is set whenever
	// Driver is "bbolt".
	Bolt *BoltConfig `json:"bbolt,omitempty"`
	// Etcd is the etcd driver's block, required with Driver "etcd".
	Etcd *EtcdConfig `json:"etcd,omitempty"`

	// Path and BatchDelay are the bbolt settings as written before drivers
	// had blocks of their own ("store": {"path": ...}). They are still
	// accepted for the bbolt driver and moved into Bolt by the defaults.
	Path       string              `json:"path,omitempty"`
	BatchDelay *providers.Duration `json:"batch_delay,omitempty"`
}

// BoltConfig is the "store.bbolt" block.
type BoltConfig struct {
	// Path of the bbolt file, relative to the process's working directory
	// (not to the config file, so that the same config works from a unit
	// file and from a shell in the same directory). Default DefaultStorePath.
	Path string `json:"path,omitempty"`
	// BatchDelay is how long a write that finds no commit in progress waits
	// for others to share its fsync; omitted means the store's default (0s:
	// writes that arrive during a commit share the next one anyway). At
	// most 1s, because every acknowledged write may wait this long.
	BatchDelay *providers.Duration `json:"batch_delay,omitempty"`
}

// EtcdConfig is the "store.etcd" block.
type EtcdConfig struct {
	// Endpoints are the cluster members' client URLs
	// ("https://etcd-0.etcd:2379"); at least one.
	Endpoints []string `json:"endpoints"`
	// Prefix is put before every key, so that deployments (or test runs)
	// can share a cluster; it ends in "/". Default DefaultEtcdPrefix.
	Prefix string `json:"prefix,omitempty"`
	// DialTimeout bounds connecting; default 5s, at most 1m.
	DialTimeout *providers.Duration `json:"dial_timeout,omitempty"`
	// RequestTimeout bounds one request; default 5s, 100ms to 1m.
	RequestTimeout *providers.Duration `json:"request_timeout,omitempty"`
	// TLS, for https endpoints: the CA that signed the members'
	// certificates (default: the system's), and a client certificate when
	// the cluster requires one.
	TLS *EtcdTLS `json:"tls,omitempty"`
	// Username, with the password by reference, when the cluster has
	// authentication on.
	Username     string `json:"username,omitempty"`
	PasswordEnv  string `json:"password_env,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
}

// EtcdTLS is the "store.etcd.tls" block.
type EtcdTLS struct {
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

var drivers = []string{DriverBolt, DriverEtcd}

func (v *validator) store(path string, s StoreConfig) {
	switch s.Driver {
	case "", DriverBolt:
		if s.Etcd != nil {
			v.add(path+".etcd", `only used with driver "etcd"`)
		}
		v.bolt(path, s)
	case DriverEtcd:
		if s.Bolt != nil {
			v.add(path+".bbolt", `only used with driver "bbolt"`)
		}
		if s.Path != "" || s.BatchDelay != nil {
			v.add(path, `"path" and "batch_delay" are bbolt settings; driver "etcd" takes its settings from "etcd"`)
		}
		if s.Etcd == nil {
			v.add(path+".etcd", `required with driver "etcd": at least its "endpoints"`)
			return
		}
		v.etcd(path+".etcd", *s.Etcd)
	default:
		v.add(path+".driver", "unknown driver %q (known: %s)", s.Driver, strings.Join(drivers, ", "))
	}
}

func (v *validator) bolt(path string, s StoreConfig) {
	b, boltPath := s.Bolt, path+".bbolt"
	if b == nil {
		b, boltPath = &BoltConfig{Path: s.Path, BatchDelay: s.BatchDelay}, path
	} else if s.Path != "" || s.BatchDelay != nil {
		v.add(path, `set the bbolt settings in "bbolt" only ("path" and "batch_delay" directly in "store" are the older spelling of the same settings)`)
	}
	v.between(boltPath+".batch_delay", b.BatchDelay, 0, maxBatchDelay)
}

func (v *validator) etcd(path string, e EtcdConfig) {
	if len(e.Endpoints) == 0 {
		v.add(path+".endpoints", `required: the members' client URLs, such as "https://etcd-0.etcd:2379"`)
	}
	https := false
	for i, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			v.add(fmt.Sprintf("%s.endpoints[%d]", path, i), `must be a client URL with a port and nothing after it, such as "https://etcd-0.etcd:2379"`)
			continue
		}
		https = https || u.Scheme == "https"
	}
	switch {
	case e.Prefix == "":
	case !strings.HasSuffix(e.Prefix, "/"):
		// Without it, deployment "todo" would read the keys of "todo-eu".
		v.add(path+".prefix", `must end in "/" (such as "todo-gateway/prod/"), so that no deployment's keys start another's`)
	case strings.IndexByte(e.Prefix, 0) >= 0:
		v.add(path+".prefix", "must not contain a NUL byte")
	}
	v.between(path+".dial_timeout", e.DialTimeout, time.Millisecond, maxEtcdTimeout)
	v.between(path+".request_timeout", e.RequestTimeout, minEtcdRequestTimeout, maxEtcdTimeout)
	if t := e.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.add(path+".tls", "set cert_file and key_file together (a client certificate and its key)")
		}
		if !https {
			v.add(path+".tls", "only used with https endpoints")
		}
	}
	switch {
	case e.Username == "" && (e.PasswordEnv != "" || e.PasswordFile != ""):
		v.add(path+".username", "required with a password")
	case e.Username != "":
		for _, p := range providers.CheckSecretRef(path, "password", e.PasswordEnv, e.PasswordFile) {
			v.add(p.Path, "%s", p.Message)
		}
	}
}

// between checks an optional duration against its bounds.
func (v *validator) between(path string, d *providers.Duration, least, most time.Duration) {
	if d != nil && (time.Duration(*d) < least || time.Duration(*d) > most) {
		v.add(path, "must be between %s and %s", least, most)
	}
}

// applyDefaults fills the driver and its block.
func (s *StoreConfig) applyDefaults() {
	if s.Driver == "" {
		s.Driver = DriverBolt
	}
	if s.Driver == DriverEtcd {
		e := *s.Etcd // a copy: the caller's block may be shared with another Config
		if e.Prefix == "" {
			e.Prefix = DefaultEtcdPrefix
		}
		if e.DialTimeout == nil {
			e.DialTimeout = durationOf(DefaultEtcdDialTimeout)
		}
		if e.RequestTimeout == nil {
			e.RequestTimeout = durationOf(DefaultEtcdRequestTimeout)
		}
		s.Etcd = &e
		return
	}
	if s.Bolt == nil {
		s.Bolt = &BoltConfig{Path: s.Path, BatchDelay: s.BatchDelay}
	} else {
		b := *s.Bolt // a copy: the caller's block may be shared with another Config
		s.Bolt = &b
	}
	s.Path, s.BatchDelay = "", nil
	if s.Bolt.Path == "" {
		s.Bolt.Path = DefaultStorePath
	}
}

func durationOf(d time.Duration) *providers.Duration {
	v := providers.Duration(d)
	return &v
}
