package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
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

// ErrNotJSON: what ReadMessage (or checkMembers) was given is not JSON
// text. ErrNotObject: it is JSON, but no object.
var (
	ErrNotJSON   = errors.New("not JSON")
	ErrNotObject = errors.New("not a JSON object")
)

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

// memberReading reads JSON as encoding/json's Valid accepts it: equal
// names (decided here, member by member) and invalid UTF-8 (which
// encoding/json reads as U+FFFD) are not errors of the syntax.
var memberReading = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// memberReader is a jsontext.Decoder reading straight from the bytes it is
// given (a bytes.Buffer is read in place), pooled: one message is read
// once, without copies of its values.
type memberReader struct {
	src bytes.Buffer
	dec jsontext.Decoder
}

var memberReaders = sync.Pool{New: func() any { return new(memberReader) }}

// checkMembers returns the value of each of names in the JSON object obj
// (nil for a name it lacks), each a slice of obj; ErrNotJSON when obj is
// not JSON text, ErrNotObject when it is no object; else an
// *ambiguousError when a name appears twice or another member could be
// read as one of them. The whole of obj is read either way, so that text
// that is not JSON is always told as such. names are printable ASCII.
func checkMembers(obj []byte, in string, names ...string) ([]json.RawMessage, error) {
	return readMembers(obj, in, names, nil)
}

// checkMembersAt is checkMembers that also says where in obj each value
// starts (its offset; meaningless for a name obj lacks), for a caller that
// rewrites a value where it is.
func checkMembersAt(obj []byte, in string, names ...string) ([]json.RawMessage, []int, error) {
	at := make([]int, len(names))
	values, err := readMembers(obj, in, names, at)
	return values, at, err
}

// readMembers is checkMembers, recording each value's offset in at when at
// is not nil (only the filter's rewrite needs them: the request path does
// not pay for them).
func readMembers(obj []byte, in string, names []string, at []int) (values []json.RawMessage, err error) {
	r := memberReaders.Get().(*memberReader)
	defer func() {
		r.src = bytes.Buffer{}
		r.dec.Reset(&r.src) // drops obj
		memberReaders.Put(r)
	}()
	r.src = *bytes.NewBuffer(obj)
	dec := &r.dec
	dec.Reset(&r.src, memberReading...)
	if dec.PeekKind() != '{' {
		if dec.SkipValue() != nil || !onlySpace(obj[dec.InputOffset():]) {
			return nil, ErrNotJSON
		}
		return nil, ErrNotObject
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, ErrNotJSON
	}
	values = make([]json.RawMessage, len(names))
	var ambiguous error
	for dec.PeekKind() == '"' {
		quoted, err := dec.ReadValue()
		if err != nil {
			return nil, ErrNotJSON
		}
		member := decodeString(quoted)
		value, err := dec.ReadValue()
		if err != nil {
			return nil, ErrNotJSON
		}
		if ambiguous != nil {
			continue // read on only to tell text that is not JSON
		}
		end := int(dec.InputOffset())
		value = obj[end-len(value) : end : end]
		for i, name := range names {
			switch {
			case string(member) == name && values[i] != nil:
				ambiguous = &ambiguousError{In: in, Member: name, As: name}
			case string(member) == name:
				values[i] = json.RawMessage(value)
				if at != nil {
					at[i] = end - len(value)
				}
			case readsAs(member, name):
				ambiguous = &ambiguousError{In: in, Member: string(member), As: name}
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil || !onlySpace(obj[dec.InputOffset():]) {
		return nil, ErrNotJSON
	}
	if ambiguous != nil {
		return nil, ambiguous
	}
	return values, nil
}

// onlySpace reports whether b is JSON whitespace alone: what may follow a
// message.
func onlySpace(b []byte) bool { return len(bytes.TrimLeft(b, " \t\r\n")) == 0 }

// decodeString is the JSON string quoted (valid JSON) as encoding/json
// decodes it: escapes resolved, invalid UTF-8 and an escaped lone
// surrogate as U+FFFD. Most strings have nothing to decode: they are
// returned in place.
func decodeString(quoted []byte) []byte {
	if plain := quoted[1 : len(quoted)-1]; bytes.IndexByte(plain, '\\') < 0 && utf8.Valid(plain) {
		return plain
	}
	// The error says that U+FFFD replaced something: the string is still
	// the one readers decode.
	s, _ := jsontext.AppendUnquote(nil, quoted)
	return s
}

// StringValue is a member's value (as Message holds it) when it is a JSON
// string, decoded as encoding/json decodes it; "" for anything else
// (absent, null, another type).
func StringValue(raw json.RawMessage) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	return string(decodeString(raw))
}

// readsAs reports whether some JSON reader may take member for name (an
// ASCII word) though the two differ: equal once what no one sees in a
// name is left out (NUL and the other controls, spaces, invisible
// formatting such as U+200B, invalid UTF-8) and case is folded as Unicode
// folds it (ſ as s, K as k). Wider than any one reader, on purpose: no
// SDK writes such a name.
func readsAs(member []byte, name string) bool {
	if string(member) == name || len(member) < len(name) {
		return false
	}
	if visibleASCII(member) {
		// Nothing to leave out, and no fold of ASCII leaves ASCII but
		// its case: the common case, without an allocation.
		return len(member) == len(name) && bytes.EqualFold(member, []byte(name))
	}
	seen := bytes.Map(func(r rune) rune {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, member)
	return strings.EqualFold(string(seen), name)
}

// visibleASCII reports whether b is printable ASCII without spaces.
func visibleASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// Message is what the gateway reads of one JSON-RPC message to decide on
// it, each member exactly as every reader reads it (ReadMessage refused
// the message otherwise), as written: nil when absent.
type Message struct {
	JSONRPC, ID, Method, Params, Result, Error json.RawMessage
	// Name is params.name; nil when params is no object or has none.
	Name json.RawMessage
	// ProtocolVersion is the version a 2026-07-28 request names in
	// params._meta (mcpgo.MetaKeyProtocolVersion); nil when it names none.
	ProtocolVersion json.RawMessage
}

// ReadMessage reads one JSON-RPC message, once (and params and its _meta
// once more, for what the gateway reads in them), in place: ErrNotJSON
// when msg is not JSON text, ErrNotObject when it is no object, and an
// error naming the member when a member JSON readers may read apart is
// among its own members (jsonrpc, id, method, params, result and error),
// in params (name, the tool a tools/call names; _meta) or in params._meta
// (the protocol version). Every other member is the upstream's alone to
// read.
func ReadMessage(msg []byte) (Message, error) {
	values, err := checkMembers(msg, "the message", "jsonrpc", "id", "method", "params", "result", "error")
	if err != nil {
		return Message{}, err
	}
	m := Message{JSONRPC: values[0], ID: values[1], Method: values[2], Params: values[3], Result: values[4], Error: values[5]}
	if m.Params == nil || m.Params[0] != '{' {
		return m, nil
	}
	inParams, err := checkMembers(m.Params, "params", "name", "_meta")
	if err != nil {
		return Message{}, err
	}
	m.Name = inParams[0]
	if meta := inParams[1]; meta != nil && meta[0] == '{' {
		inMeta, err := checkMembers(meta, "params._meta", mcpgo.MetaKeyProtocolVersion)
		if err != nil {
			return Message{}, err
		}
		m.ProtocolVersion = inMeta[0]
	}
	return m, nil
}
