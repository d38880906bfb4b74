package store

import (
	"bytes"
	"fmt"
)

// Imported is a todo of an Import call as a backend stores it: checked, its
// CreatedAt the id's time in UTC (the form Create stores, so that a copied
// record has the same bytes as the original), and its record.
type Imported struct {
	Todo   Todo
	Record []byte
}

// PrepareImport checks an Import call's input, with Create's rules, before
// a backend writes anything: the tenant, and for each todo its id (a todo
// id, once in the call), its owner, its content and its CreatedAt, which
// must be the id's time. Errors wrap ErrInvalid and name the id.
func PrepareImport(tenant string, todos []Todo) ([]Imported, error) {
	if err := ValidateKey("tenant", tenant); err != nil {
		return nil, err
	}
	out := make([]Imported, len(todos))
	seen := make(map[string]bool, len(todos))
	for i, todo := range todos {
		created, err := IDTime(todo.ID)
		if err != nil {
			return nil, fmt.Errorf("todo %d: %w", i, err)
		}
		switch {
		case seen[todo.ID]:
			return nil, fmt.Errorf("%w: todo %s is given twice", ErrInvalid, todo.ID)
		case !todo.CreatedAt.Equal(created):
			return nil, fmt.Errorf("%w: todo %s: createdAt %s is not the time of its id, %s",
				ErrInvalid, todo.ID, todo.CreatedAt.Format(TimeLayout), created.Format(TimeLayout))
		}
		seen[todo.ID] = true
		if err := ValidateKey("owner", todo.OwnerID); err != nil {
			return nil, fmt.Errorf("todo %s: %w", todo.ID, err)
		}
		if err := ValidateContent(todo.Content); err != nil {
			return nil, fmt.Errorf("todo %s: %w", todo.ID, err)
		}
		todo.CreatedAt = created
		record, err := EncodeRecord(todo)
		if err != nil {
			return nil, err
		}
		out[i] = Imported{Todo: todo, Record: record}
	}
	return out, nil
}

// Matches reports whether stored, the record an id already has, is this
// todo: then Import skips it; otherwise it is a Conflict. Records are
// compared as todos, not as bytes, so that a record another encoder wrote
// (older code, other spacing) still matches.
func (im Imported) Matches(stored []byte) (bool, error) {
	if bytes.Equal(stored, im.Record) {
		return true, nil
	}
	have, err := DecodeRecord(stored)
	if err != nil {
		return false, fmt.Errorf("todo %s: %w", im.Todo.ID, err)
	}
	return have.ID == im.Todo.ID && have.Content == im.Todo.Content &&
		have.OwnerID == im.Todo.OwnerID && have.CreatedAt.Equal(im.Todo.CreatedAt), nil
}

// Conflict is the error of an imported todo whose id the tenant holds with
// a different record.
func Conflict(tenant, id string) error {
	return fmt.Errorf("todo %s in tenant %q: %w; the stored todo is kept", id, tenant, ErrConflict)
}
