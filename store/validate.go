package store

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyBytes bounds a tenant id, an owner or a todo id. An OIDC sub is at most
// 255 ASCII characters; the bound keeps keys far below bbolt's 32 KiB limit
// and etcd's request limits.
const MaxKeyBytes = 512

// ValidateContent accepts a todo's text: not empty or only white space, at
// most MaxContentBytes bytes, valid UTF-8. Errors wrap ErrInvalid.
func ValidateContent(content string) error {
	// Length first, so an oversized input is refused without being scanned.
	switch {
	case len(content) > MaxContentBytes:
		return fmt.Errorf("%w: content is %d bytes, the limit is %d", ErrInvalid, len(content), MaxContentBytes)
	case !utf8.ValidString(content):
		return fmt.Errorf("%w: content is not valid UTF-8", ErrInvalid)
	case strings.TrimSpace(content) == "":
		return fmt.Errorf("%w: content is empty", ErrInvalid)
	}
	return nil
}

// ValidateKey accepts a tenant id, an owner or a todo id; what names it in the
// error. The value must be non-empty, at most MaxKeyBytes, valid UTF-8 (JSON
// would otherwise store a different string than the caller compares with) and
// free of NUL, which backends use as a separator in index keys. Errors wrap
// ErrInvalid.
func ValidateKey(what, value string) error {
	switch {
	case value == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	case len(value) > MaxKeyBytes:
		return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrInvalid, what, len(value), MaxKeyBytes)
	case !utf8.ValidString(value):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, what)
	}
	return nil
}

// NewTodo validates a Create call's input and returns the todo to store,
// with a fresh id and a CreatedAt equal to the id's time (so that id order
// and CreatedAt order agree), and its record (EncodeRecord).
func NewTodo(tenant, owner, content string) (Todo, []byte, error) {
	if err := ValidateKey("tenant", tenant); err != nil {
		return Todo{}, nil, err
	}
	if err := ValidateKey("owner", owner); err != nil {
		return Todo{}, nil, err
	}
	if err := ValidateContent(content); err != nil {
		return Todo{}, nil, err
	}
	id := NewID()
	created, err := IDTime(id)
	if err != nil {
		return Todo{}, nil, err // cannot happen: NewID's output always parses
	}
	todo := Todo{ID: id, Content: content, OwnerID: owner, CreatedAt: created}
	record, err := EncodeRecord(todo)
	if err != nil {
		return Todo{}, nil, err
	}
	return todo, record, nil
}

// ValidateTodoKey checks the tenant and id of a Get or Delete call.
func ValidateTodoKey(tenant, id string) error {
	if err := ValidateKey("tenant", tenant); err != nil {
		return err
	}
	return ValidateKey("id", id)
}

// NotFound is the error of a todo that is not there.
func NotFound(tenant, id string) error {
	return fmt.Errorf("todo %q in tenant %q: %w", id, tenant, ErrNotFound)
}

// Resolve checks a List call's input: the tenant, the owner when set, the
// page size (0 is DefaultLimit; negative or above MaxLimit is ErrInvalid)
// and the cursor, returning the page size and the id to resume after.
func (o ListOptions) Resolve(tenant string) (limit int, after string, err error) {
	if err := ValidateKey("tenant", tenant); err != nil {
		return 0, "", err
	}
	if o.Owner != "" {
		if err := ValidateKey("owner", o.Owner); err != nil {
			return 0, "", err
		}
	}
	switch {
	case o.Limit == 0:
		limit = DefaultLimit
	case o.Limit < 0 || o.Limit > MaxLimit:
		return 0, "", fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, o.Limit, MaxLimit)
	default:
		limit = o.Limit
	}
	after, err = DecodeCursor(o.Cursor)
	return limit, after, err
}
