package tenants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// Source is where the configuration comes from: a file today, a key in
// etcd next. The gateway reads it at start and again whenever Watch says it
// may have changed, and applies what it reads only when its Version differs
// from what it serves.
type Source interface {
	// String names the source in logs and messages.
	String() string
	// Read returns the configuration's bytes as they are now.
	Read(ctx context.Context) ([]byte, error)
	// Watch calls changed whenever the bytes may have changed, until ctx
	// ends; it may call it when nothing changed (the caller compares
	// versions). It returns once watching has started, or an error if it
	// cannot start. Errors while watching go to problem.
	Watch(ctx context.Context, changed func(), problem func(error)) error
}

// Version names configuration bytes: the hex SHA-256 of exactly these bytes.
// Two instances showing the same version serve the same configuration.
func Version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// FileSource is a configuration file. It watches the file's directory, not
// the file: editors and configuration managers replace a file by renaming
// another over it, which ends a watch on the file itself, and a Kubernetes
// ConfigMap volume changes by swapping a "..data" symlink in the directory,
// an event that never names the file at all. So any change in the directory
// counts, and the version comparison filters out the unrelated ones.
type FileSource struct {
	Path string
}

func (f FileSource) String() string { return f.Path }

// Read reads the file, following symlinks.
func (f FileSource) Read(context.Context) ([]byte, error) { return os.ReadFile(f.Path) }

// Watch reports every event in the file's directory.
func (f FileSource) Watch(ctx context.Context, changed func(), problem func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				changed()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				problem(err)
			}
		}
	}()
	return nil
}

// StaticSource is configuration held in memory (the embedded example): it
// never changes.
type StaticSource struct {
	Name string
	Data []byte
}

func (s StaticSource) String() string                       { return s.Name }
func (s StaticSource) Read(context.Context) ([]byte, error) { return s.Data, nil }

// Watch has nothing to watch.
func (StaticSource) Watch(context.Context, func(), func(error)) error { return nil }

// Read reads and parses src, returning the configuration with its version.
// Errors name the source.
func Read(ctx context.Context, src Source) (*Config, string, error) {
	data, err := src.Read(ctx)
	if err != nil {
		return nil, "", err // os errors name the file already
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", src, err)
	}
	return cfg, Version(data), nil
}
