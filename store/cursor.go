package store

import (
	"encoding/base64"
	"fmt"
)

// cursorVersion leads every cursor so that its format can change later while
// old cursors are still told apart and refused cleanly.
const cursorVersion = 1

var cursorEncoding = base64.RawURLEncoding.Strict()

// EncodeCursor returns the opaque cursor that resumes a listing after lastID.
// Backends list in id order and resume strictly after the id, so a cursor
// stays valid when its todo is deleted or others are inserted.
func EncodeCursor(lastID string) string {
	b := make([]byte, 0, 1+len(lastID))
	b = append(b, cursorVersion)
	b = append(b, lastID...)
	return cursorEncoding.EncodeToString(b)
}

// DecodeCursor returns the id a cursor from EncodeCursor resumes after. The
// empty cursor is the first page and returns "". Anything else that is not a
// cursor is ErrInvalid.
func DecodeCursor(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := cursorEncoding.DecodeString(cursor)
	if err != nil || len(b) == 0 || b[0] != cursorVersion {
		return "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	id := string(b[1:])
	if _, err := parseID(id); err != nil {
		return "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	return id, nil
}
