package tenants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// Source is where the configuration comes from: a file, or a key in etcd
// (EtcdSource). The gateway reads it at start and again whenever Watch says
// it may have changed, and applies what it reads only when its Version
// differs from what it serves.
type Source interface {
	// String names the source in logs and messages.
	String() string
	// Read returns the configuration's bytes as they are now.
	Read(ctx context.Context) (Document, error)
	// Parse turns bytes read from the source into the configuration to
	// serve (Parse for a file).
	Parse(data []byte) (*Config, error)
	// Watch calls changed whenever the bytes may have changed, until ctx
	// ends; it may call it when nothing changed (the caller compares
	// versions). It returns once watching has started, or an error if it
	// cannot start. Errors while watching go to problem.
	Watch(ctx context.Context, changed func(), problem func(error)) error
}

// Document is the configuration's bytes as read from a source.
type Document struct {
	Data []byte
	// Revision is the etcd revision at which the document was written (its
	// ModRevision), or 0 for a source without revisions (a file).
	Revision int64
}

// Version is the hash that names the document's bytes.
func (d Document) Version() string { return Version(d.Data) }

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
// an event that never names the file at all. Of the directory's events it
// reports those two names only: a busy neighbour (the gateway's own log
// beside its configuration) would otherwise keep a reload waiting forever.
type FileSource struct {
	Path string
}

func (f FileSource) String() string { return f.Path }

// Read reads the file, following symlinks.
func (f FileSource) Read(context.Context) (Document, error) {
	data, err := ReadFile(f.Path)
	return Document{Data: data}, err
}

// MaxDocumentBytes bounds a configuration document, a file or what
// "tenants push" reads: far above any real one (a tenant takes about 1 KB),
// and low enough that /dev/zero or a log file named by mistake is refused
// at once instead of read until memory runs out.
const MaxDocumentBytes = 16 << 20

// ReadFile reads a configuration file of at most MaxDocumentBytes.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%s: more than %d MiB, the most a configuration may hold: is it the right file?", path, MaxDocumentBytes>>20)
	}
	return data, nil
}

// Parse parses the file's bytes.
func (FileSource) Parse(data []byte) (*Config, error) { return Parse(data) }

// configMapData is the symlink a Kubernetes ConfigMap volume swaps to
// change its files.
const configMapData = "..data"

// Watch reports the events of the file's directory that name the file or
// a ConfigMap's "..data".
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
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if name := filepath.Base(ev.Name); name == filepath.Base(f.Path) || name == configMapData {
					changed()
				}
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

func (s StaticSource) String() string                         { return s.Name }
func (s StaticSource) Read(context.Context) (Document, error) { return Document{Data: s.Data}, nil }
func (StaticSource) Parse(data []byte) (*Config, error)       { return Parse(data) }

// Watch has nothing to watch.
func (StaticSource) Watch(context.Context, func(), func(error)) error { return nil }

// Read reads and parses src, returning the configuration with the document
// it came from. Errors name the source.
func Read(ctx context.Context, src Source) (*Config, Document, error) {
	doc, err := src.Read(ctx)
	if err != nil {
		return nil, Document{}, err // os and etcd source errors name their source already
	}
	cfg, err := src.Parse(doc.Data)
	if err != nil {
		return nil, Document{}, fmt.Errorf("%s: %w", src, err)
	}
	return cfg, doc, nil
}
