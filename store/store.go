// Package store keeps the todos of every tenant. It defines the record, the
// Store interface its callers (the MCP tools, "store copy") need, and the
// sentinel errors every backend returns; backends live in subpackages
// (store/bolt, store/etcd) and all pass the same conformance suite
// (store/storetest).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Todo is one todo item. The JSON names are the tutorial's and are part of the
// tools' output contract; createdAt is written in TimeLayout (MarshalJSONTo).
type Todo struct {
	ID        string    `json:"id"`
	Content   string    `json:"content"`
	OwnerID   string    `json:"ownerId"`
	CreatedAt time.Time `json:"createdAt"`
}

// todoJSON is a Todo as written: createdAt in TimeLayout, where time.Time
// would trim the fraction ("07:12:07.58Z") and the strings would no longer
// sort like the times.
type todoJSON struct {
	ID        string `json:"id"`
	Content   string `json:"content"`
	OwnerID   string `json:"ownerId"`
	CreatedAt string `json:"createdAt"`
}

func (t Todo) written() todoJSON {
	return todoJSON{ID: t.ID, Content: t.Content, OwnerID: t.OwnerID, CreatedAt: t.CreatedAt.Format(TimeLayout)}
}

// MarshalJSONTo writes t for encoding/json/v2 (the tools' output), as
// json.Marshal(t.written()) would, token by token: a list of todos is the
// hot path of get-todos, and going through todoJSON cost three allocations
// per todo.
func (t Todo) MarshalJSONTo(enc *jsontext.Encoder) error {
	var buf [48]byte
	created := append(t.CreatedAt.AppendFormat(append(buf[:0], '"'), TimeLayout), '"')
	for _, tok := range [...]jsontext.Token{
		jsontext.BeginObject,
		jsontext.String("id"), jsontext.String(t.ID),
		jsontext.String("content"), jsontext.String(t.Content),
		jsontext.String("ownerId"), jsontext.String(t.OwnerID),
		jsontext.String("createdAt"),
	} {
		if err := enc.WriteToken(tok); err != nil {
			return err
		}
	}
	if err := enc.WriteValue(created); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// MarshalJSON writes t for encoding/json, the same way.
func (t Todo) MarshalJSON() ([]byte, error) { return json.Marshal(t.written()) }

// Limits on input a backend accepts.
const (
	MaxContentBytes = 10 * 1024
	DefaultLimit    = 100
	MaxLimit        = 1000
)

// Sentinel errors. Backends wrap them with detail; callers test with errors.Is.
var (
	// ErrNotFound: no todo with that id in that tenant.
	ErrNotFound = errors.New("todo not found")
	// ErrInvalid: the input (content, owner, id, cursor, limit) is unacceptable;
	// nothing was written.
	ErrInvalid = errors.New("invalid input")
	// ErrUnknownTenant: the tenant has no bucket; EnsureTenants was not called for it.
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrDenied: a conditional delete's condition refused; the record is kept.
	ErrDenied = errors.New("condition refused")
	// ErrConflict: Import met a todo whose id the tenant already has with a
	// different record; the stored record is kept.
	ErrConflict = errors.New("a different todo has that id")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable: the backend could not answer in time (etcd without a
	// quorum, a cluster out of reach). A write that fails so may or may not
	// have happened; the caller may retry later.
	ErrUnavailable = errors.New("store unavailable")
)

// ListOptions selects a page of a tenant's todos, oldest first.
type ListOptions struct {
	// Owner, when set, restricts the page to that owner's todos.
	Owner string
	// Limit is the page size: 0 means DefaultLimit; negative or above MaxLimit
	// is ErrInvalid.
	Limit int
	// Cursor is the NextCursor of the previous page, or empty for the first.
	// A page resumes strictly after the previous page's last id, so todos
	// created meanwhile never cause duplicates and existing ones are never
	// skipped. A string that is not a cursor is ErrInvalid.
	Cursor string
}

// Page is one page of todos. Todos is never nil, so an empty page encodes as
// []. NextCursor is empty when no more existed when the page was read.
type Page struct {
	Todos      []Todo
	NextCursor string
}

// Store is what the gateway needs from a todo backend. Every method is safe
// for concurrent use; every acknowledged write is durable. Methods check ctx
// before they start; a write already handed to the backend is not abandoned
// when ctx ends later, because the caller could not tell whether it happened.
// Tenant ids, owners and ids are checked with ValidateKey and content with
// ValidateContent; a refused input is ErrInvalid and writes nothing.
type Store interface {
	// EnsureTenants creates the space of each tenant missing one, at once.
	// It never deletes data.
	EnsureTenants(ctx context.Context, tenants ...string) error
	// Create stores a new todo owned by owner and returns it with its id (from
	// NewID) and CreatedAt (the id's time, UTC, millisecond precision).
	Create(ctx context.Context, tenant, owner, content string) (Todo, error)
	// Get returns one todo. An id no todo of the tenant has, whatever its
	// form, is ErrNotFound.
	Get(ctx context.Context, tenant, id string) (Todo, error)
	// List returns a page of the tenant's todos (or one owner's), oldest first.
	List(ctx context.Context, tenant string, opts ListOptions) (Page, error)
	// Delete removes the todo if allow(todo) is true, deciding in the same
	// transaction as the delete. It returns the deleted todo, ErrNotFound, or
	// ErrDenied (and keeps the record). A nil allow is ErrInvalid, so that a
	// forgotten check fails closed. allow may run more than once (bbolt
	// re-runs batched transactions, etcd retries on conflict): it must be a
	// pure decision on its argument and must not call the store.
	Delete(ctx context.Context, tenant, id string, allow func(Todo) bool) (Todo, error)
	// Close waits for calls in progress and releases the backend; later calls,
	// Close included, return ErrClosed.
	Close() error

	// Tenants and Import are for moving data between stores ("store copy"),
	// not for the request path: a store's tenants are what it holds, not
	// what the configuration names, because a tenant removed from the
	// configuration keeps its data (and must be copied with the rest).

	// Tenants returns the id of every tenant the store has a space for,
	// sorted by byte order.
	Tenants(ctx context.Context) ([]string, error)
	// Import stores todos as they are, keeping their ids, owners and
	// creation times, and returns how many it added. It is idempotent, so
	// an interrupted copy is resumed by running it again: a todo whose id
	// is absent is stored; one whose id holds the same todo is skipped; one
	// whose id holds a different todo is refused with ErrConflict naming
	// the id, and the stored one is kept. The input is checked as Create's
	// is (PrepareImport) before anything is written: ids must be todo ids,
	// each CreatedAt the time of its id (so id order and CreatedAt order
	// keep agreeing), each id once; a refused input is ErrInvalid. The
	// tenant must exist (ErrUnknownTenant). An empty todos writes nothing
	// and returns 0, nil, whether or not the tenant exists.
	//
	// A call is not atomic in every backend (etcd writes it in several
	// transactions): after an error some of its todos may be stored (added
	// counts those it knows of), none overwritten. Running the call again
	// completes it.
	Import(ctx context.Context, tenant string, todos []Todo) (added int, err error)
}
