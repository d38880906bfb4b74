package tenants

import (
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Store drivers. Each has its own block inside "store", named after it.
const (
	// DriverBolt is the local single-file store (one process per file).
	DriverBolt = "bbolt"
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
	// Driver is the backend; default and only value today: "bbolt".
	Driver string `json:"driver,omitempty"`
	// Bolt is the bbolt driver's block; after defaults it is set whenever
	// Driver is "bbolt".
	Bolt *BoltConfig `json:"bbolt,omitempty"`

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
	// BatchDelay is how long a write may wait for others to share its fsync
	// (bbolt's MaxBatchDelay); omitted means the store's default (1ms). At most
	// 1s, because every acknowledged write may wait this long.
	BatchDelay *providers.Duration `json:"batch_delay,omitempty"`
}

func (v *validator) store(path string, s StoreConfig) {
	if s.Driver != "" && s.Driver != DriverBolt {
		v.add(path+".driver", "unknown driver %q (known: %s)", s.Driver, DriverBolt)
		return
	}
	b, boltPath := s.Bolt, path+".bbolt"
	if b == nil {
		b, boltPath = &BoltConfig{Path: s.Path, BatchDelay: s.BatchDelay}, path
	} else if s.Path != "" || s.BatchDelay != nil {
		v.add(path, `set the bbolt settings in "bbolt" only ("path" and "batch_delay" directly in "store" are the older spelling of the same settings)`)
	}
	if b.BatchDelay != nil {
		if d := time.Duration(*b.BatchDelay); d < 0 || d > maxBatchDelay {
			v.add(boltPath+".batch_delay", "must be between 0s and %s", maxBatchDelay)
		}
	}
}

// applyDefaults fills the driver and its block.
func (s *StoreConfig) applyDefaults() {
	if s.Driver == "" {
		s.Driver = DriverBolt
	}
	if s.Driver != DriverBolt {
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
