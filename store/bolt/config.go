package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

// Config is the bbolt driver's settings, the "store.bbolt" block of the
// gateway's configuration. It fills its defaults, validates and opens
// itself; the configuration only names the driver.
type Config struct {
	// Path of the bbolt file, relative to the process's working directory
	// (not to the config file, so that the same config works from a unit
	// file and from a shell in the same directory). Default DefaultPath.
	Path string `json:"path,omitempty"`
	// BatchDelay is Options.BatchDelay: how long a write that finds no
	// commit in progress waits for others to share its fsync; omitted
	// means no wait (writes that arrive during a commit share the next one
	// anyway). At most 1s, because every acknowledged write may wait this
	// long.
	BatchDelay *providers.Duration `json:"batch_delay,omitempty"`
	// ReadOnly, ObserveCommit and Span are Options' settings of the same names;
	// set by commands, never by a file.
	ReadOnly      bool                              `json:"-"`
	ObserveCommit func(d time.Duration, writes int) `json:"-"`
	Span          store.Span                        `json:"-"`
}

// DefaultPath is where the driver keeps its file by default.
const DefaultPath = "data/todos.db"

// maxBatchDelay bounds Config.BatchDelay.
const maxBatchDelay = time.Second

// WithDefaults returns c with every omitted setting filled.
func (c Config) WithDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	return c
}

// Validate reports what is wrong with c, with paths relative to the block.
func (c Config) Validate() []providers.Problem {
	return providers.CheckBetween("batch_delay", c.BatchDelay, 0, maxBatchDelay)
}

// Describe names the file, for logs and messages.
func (c Config) Describe() string { return "bbolt " + c.WithDefaults().Path }

// Open creates the file's directory if needed and opens the store.
func (c Config) Open() (*Store, error) {
	c = c.WithDefaults()
	if dir := filepath.Dir(c.Path); dir != "" && !c.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
	}
	opts := Options{ReadOnly: c.ReadOnly, ObserveCommit: c.ObserveCommit, Span: c.Span}
	if c.BatchDelay != nil {
		opts.BatchDelay = time.Duration(*c.BatchDelay)
	}
	return Open(c.Path, opts)
}
