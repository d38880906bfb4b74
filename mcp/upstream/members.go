package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The gateway decides on a message by the members it reads (method,
// params.name; result.tools and each tool's name in an answer), and
// passes the message on as it came: the reader at the other end must read
// the same members. JSON readers do not all agree on which member a name
// is. Go's encoding/json (mcp-go, the gateway's own peek) matches names
// case-insensitively and folds ſ and K to s and k, the last match winning;
// JSON.parse, Python and go-sdk since v1.3.1 match names exactly; some
// readers take the first of two equal names, some the last, some refuse
// them; one has ignored a NUL appended to a name (go-sdk v1.3.1 to
// v1.4.0). So {"name":"get-env","Name":"echo"} was echo to the gateway
// and get-env to a TypeScript upstream: a call past the permission check.
// A message whose members could be read apart is refused instead
// (requests) or replaced (tool lists): legitimate SDKs never write one.

// errNotObject: checkMembers was given JSON that is no object.
var errNotObject = errors.New("not a JSON object")

// ambiguousError is a member of a message that JSON readers may read
// apart: one of the names a decision rests on written twice, or another
// name some reader takes for it.
type ambiguousError struct {
	// In is where the member is: "the message", "params", ….
	In string
	// Member is the name as written (escapes resolved); As the name a
	// reader may take it for, or Member again when it is written twice.
	Member, As string
}

func (e *ambiguousError) Error() string {
	if e.Member == e.As {
		return fmt.Sprintf("member %q of %s appears twice: JSON readers differ on which one counts", e.Member, e.In)
	}
	return fmt.Sprintf("member %s of %s is ambiguous: some JSON readers take it for %q (JSON-RPC member names are exact)", bound(strconv.Quote(e.Member)), e.In, e.As)
}

// checkMembers returns the value of each of names in the JSON object obj
// (nil for a name it lacks), or an *ambiguousError when a name appears
// twice or another member could be read as one of them; errNotObject when
// obj is no object. names are ASCII letters.
func checkMembers(obj []byte, in string, names ...string) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotObject
	}
	values := make([]json.RawMessage, len(names))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		member, _ := t.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		for i, name := range names {
			switch {
			case member == name && values[i] != nil:
				return nil, &ambiguousError{In: in, Member: member, As: name}
			case member == name:
				values[i] = value
			case readsAs(member, name):
				return nil, &ambiguousError{In: in, Member: member, As: name}
			}
		}
	}
	return values, nil
}

// readsAs reports whether some JSON reader may take member for name (an
// ASCII word) though the two differ: equal once what no one sees in a
// name is left out (NUL and the other controls, spaces, invisible
// formatting such as U+200B, the U+FFFD of invalid UTF-8) and case is
// folded as Unicode folds it (ſ as s, K as k). Wider than any one reader,
// on purpose: no SDK writes such a name.
func readsAs(member, name string) bool {
	if member == name || len(member) < len(name) {
		return false
	}
	seen := strings.Map(func(r rune) rune {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, member)
	return strings.EqualFold(seen, name)
}

// CheckMessage returns an error naming the member when one JSON-RPC
// message (an object, valid JSON) has a member that JSON readers may read
// apart: among its own members, jsonrpc, id, method, params, result and
// error; in params, name (the tool a tools/call names). Every other
// member is the upstream's alone to read.
func CheckMessage(msg []byte) error {
	values, err := checkMembers(msg, "the message", "jsonrpc", "id", "method", "params", "result", "error")
	if err != nil {
		return err
	}
	if params := values[3]; params != nil {
		if _, err := checkMembers(params, "params", "name"); err != nil && !errors.Is(err, errNotObject) {
			return err
		}
	}
	return nil
}
