package tenants

import (
	"strings"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/store/etcd"
)

// Store drivers. Each has its own block inside "store", named after it.
const (
	// DriverBolt is the local single-file store (one process per file).
	DriverBolt = "bbolt"
	// DriverEtcd is an etcd cluster that many gateway instances share.
	DriverEtcd = "etcd"
)

// StoreConfig is the "store" block: which backend keeps the todos, and that
// backend's own settings in a block named after the driver, which the
// backend's package owns (bolt.Config, etcd.Config: defaults, validation,
// opening):
//
//	"store": {"driver": "bbolt", "bbolt": {"path": "data/todos.db"}}
//
// It cannot change on reload.
type StoreConfig struct {
	// Driver is the backend: "bbolt" (default) or "etcd".
	Driver string `json:"driver,omitempty"`
	// Bolt is the bbolt driver's block; after defaults it is set whenever
	// Driver is "bbolt".
	Bolt *bolt.Config `json:"bbolt,omitempty"`
	// Etcd is the etcd driver's block, required with Driver "etcd".
	Etcd *etcd.Config `json:"etcd,omitempty"`

	// Path and BatchDelay are the bbolt settings as written before drivers
	// had blocks of their own ("store": {"path": ...}). They are still
	// accepted for the bbolt driver and moved into Bolt by the defaults.
	Path       string              `json:"path,omitempty"`
	BatchDelay *providers.Duration `json:"batch_delay,omitempty"`
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
		v.within(path+".etcd", s.Etcd.Validate())
	default:
		v.add(path+".driver", "unknown driver %q (known: %s)", s.Driver, strings.Join(drivers, ", "))
	}
}

func (v *validator) bolt(path string, s StoreConfig) {
	b, boltPath := s.Bolt, path+".bbolt"
	if b == nil {
		b, boltPath = &bolt.Config{Path: s.Path, BatchDelay: s.BatchDelay}, path
	} else if s.Path != "" || s.BatchDelay != nil {
		v.add(path, `set the bbolt settings in "bbolt" only ("path" and "batch_delay" directly in "store" are the older spelling of the same settings)`)
	}
	v.within(boltPath, b.Validate())
}

// within adds a block's own problems, whose paths are relative to it.
func (v *validator) within(path string, problems []providers.Problem) {
	for _, p := range problems {
		at := path
		switch {
		case p.Path == "":
		case path == "":
			at = p.Path
		case strings.HasPrefix(p.Path, "."):
			at += p.Path
		default:
			at += "." + p.Path
		}
		v.add(at, "%s", p.Message)
	}
}

// applyDefaults fills the driver and its block.
func (s *StoreConfig) applyDefaults() {
	if s.Driver == "" {
		s.Driver = DriverBolt
	}
	if s.Driver == DriverEtcd {
		e := s.Etcd.WithDefaults() // a copy: the caller's block may be shared with another Config
		s.Etcd = &e
		return
	}
	b := bolt.Config{Path: s.Path, BatchDelay: s.BatchDelay}
	if s.Bolt != nil {
		b = *s.Bolt
	}
	b = b.WithDefaults()
	s.Bolt, s.Path, s.BatchDelay = &b, "", nil
}

// between checks an optional duration against its bounds.
func (v *validator) between(path string, d *providers.Duration, least, most time.Duration) {
	v.within("", providers.CheckBetween(path, d, least, most))
}

func durationOf(d time.Duration) *providers.Duration {
	v := providers.Duration(d)
	return &v
}
