package bolt

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged says that a file is no usable bbolt database: empty, cut
// short, damaged inside, or of another format. bbolt trusts its file: it
// panics on a page it cannot read, and a file shorter than its meta page
// says faults on the mapped memory (SIGBUS), which no recover catches
// unless the goroutine asked for faults as panics (debug.SetPanicOnFault).
// So every open reads the file under that guard first.
var ErrDamaged = errors.New("not a usable bbolt database")

// damaged is ErrDamaged for path, with why and what to do.
func damaged(path, why string) error {
	return fmt.Errorf("%s: %w: %s; restore it from a backup (todo-gateway store backup makes one), or move it aside to start with an empty store", path, ErrDamaged, why)
}

// guarded runs f with memory faults turned into panics, and any panic into
// ErrDamaged for path: what bbolt does on a page it cannot read.
func guarded(path string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, fmt.Sprint("reading it failed: ", r))
		}
	}()
	return f()
}

// openChecked opens path with bbolt as o says, refusing a file that is not
// a whole, consistent bbolt database: an existing empty file (bbolt would
// make a new database in it: a file cut to nothing would silently become
// an empty store), one of another format, one shorter than its meta page
// says, and one whose pages do not check out (Tx.Check, which reads every
// page once). A file that does not exist is created unless o.ReadOnly.
//
// The file is checked through a read-only open first: that open loads
// nothing but the meta pages, and Check recovers bbolt's panics itself.
// A read-write open of a damaged file panics half way (loading its
// freelist), and leaves the file mapped, and so locked, for as long as
// the process lives.
func openChecked(path string, mode os.FileMode, o *bbolt.Options) (*bbolt.DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !o.ReadOnly {
			return bbolt.Open(path, mode, o)
		}
		return nil, err
	}
	if fi.Size() == 0 {
		return nil, damaged(path, "the file is empty (a new store is made only where no file exists)")
	}
	ro := *o
	ro.ReadOnly = true
	var db *bbolt.DB
	err = guarded(path, func() error {
		var err error
		db, err = bbolt.Open(path, 0o400, &ro)
		switch {
		case err == nil:
		case errors.Is(err, berrors.ErrTimeout), errors.Is(err, os.ErrPermission):
			return err
		default: // ErrInvalid, ErrVersionMismatch, ErrChecksum, "file size too small"
			return damaged(path, "it is not a bbolt database, or its header is damaged ("+err.Error()+")")
		}
		return db.View(func(tx *bbolt.Tx) error {
			// Before Check: a page past the end of the file faults.
			if tx.Size() > fi.Size() {
				return damaged(path, fmt.Sprintf("it is %d bytes long and its header says %d: it was cut short", fi.Size(), tx.Size()))
			}
			return checkPages(path, tx)
		})
	})
	switch {
	case err != nil && db != nil:
		db.Close()
		return nil, err
	case err != nil:
		return nil, err
	case o.ReadOnly:
		return db, nil
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return bbolt.Open(path, mode, o)
}

// checkPages runs Tx.Check on tx and returns the first inconsistency as
// ErrDamaged. The channel is drained: Check's goroutine stops only when
// read to the end, and it recovers bbolt's panics itself.
func checkPages(path string, tx *bbolt.Tx) error {
	var bad error
	for err := range tx.Check() {
		if bad == nil {
			bad = damaged(path, "its pages are not consistent: "+err.Error())
		}
	}
	return bad
}
