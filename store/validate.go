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

// NewTodo validates a Create call's input and returns the record to store,
// with a fresh id and a CreatedAt equal to the id's time, so that id order and
// CreatedAt order agree.
func NewTodo(owner, content string) (Todo, error) {
	if err := ValidateKey("owner", owner); err != nil {
		return Todo{}, err
	}
	if err := ValidateContent(content); err != nil {
		return Todo{}, err
	}
	id := NewID()
	created, err := IDTime(id)
	if err != nil {
		return Todo{}, err // cannot happen: NewID's output always parses
	}
	return Todo{ID: id, Content: content, OwnerID: owner, CreatedAt: created}, nil
}

// PageSize resolves Limit: 0 is DefaultLimit; negative or above MaxLimit is
// ErrInvalid.
func (o ListOptions) PageSize() (int, error) {
	switch {
	case o.Limit == 0:
		return DefaultLimit, nil
	case o.Limit < 0 || o.Limit > MaxLimit:
		return 0, fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, o.Limit, MaxLimit)
	}
	return o.Limit, nil
}
