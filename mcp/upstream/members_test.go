package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// readErr is ReadMessage's verdict on msg.
func readErr(msg []byte) error {
	_, err := ReadMessage(msg)
	return err
}

// TestReadMessage: a member a reader could take for one the gateway
// decides on, or one of those written twice, is refused with words that
// name it; every other member, at any depth, is the upstream's alone.
func TestReadMessage(t *testing.T) {
	refused := []struct{ msg, member, as string }{
		{`{"method":"tools/call","params":{"name":"get-env","Name":"echo"}}`, "Name", "name"},
		{`{"method":"tools/call","params":{"NAME":"echo","name":"get-env"}}`, "NAME", "name"},
		{`{"method":"tools/call","Method":"ping","params":{"name":"get-env"}}`, "Method", "method"},
		{`{"METHOD":"ping","method":"tools/call"}`, "METHOD", "method"},
		// Go's encoding/json folds ſ (U+017F) to s and K (U+212A) to k.
		{`{"method":"tools/call","params":{"name":"get-env"},"paramſ":{"name":"echo"}}`, "paramſ", "params"},
		{`{"method":"tools/call","params":{"name":"get-env"},"param\u017f":{"name":"echo"}}`, "paramſ", "params"},
		// A reader has ignored a trailing NUL; invisible characters and
		// invalid UTF-8 (U+FFFD once decoded) are left out too.
		{`{"method":"tools/call","params":{"name":"get-env","name\u0000":"echo"}}`, "name\x00", "name"},
		{`{"method":"tools/call","params":{"name":"get-env","na\u200bme":"echo"}}`, "na\u200bme", "name"},
		{"{\"method\":\"tools/call\",\"params\":{\"name\":\"get-env\",\"nam\xffe\":\"echo\"}}", "nam\ufffde", "name"},
		{`{"method":"tools/call","params":{"name":"get-env","name ":"echo"}}`, "name ", "name"},
		{`{"Result":{},"id":1,"method":"tools/call"}`, "Result", "result"},
		{`{"id":1,"Id":2,"method":"ping"}`, "Id", "id"},
		// Twice: JSON.parse and Go keep the last, other readers the first
		// or neither.
		{`{"method":"tools/call","params":{"name":"echo","name":"get-env"}}`, "name", "name"},
		{`{"method":"ping","method":"tools/call"}`, "method", "method"},
		{`{"method":"tools/call","params":{"name":"echo"},"params":{"name":"get-env"}}`, "params", "params"},
		{`{"method":"tools/call","n\u0061me":1,"params":{"n\u0061me":"a","name":"b"}}`, "name", "name"},
		// The protocol version a 2026-07-28 request names, which the
		// gateway decides by too.
		{`{"method":"resources/read","params":{"_meta":{},"_Meta":{}}}`, "_Meta", "_meta"},
		{`{"method":"resources/read","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/protocolversion":"2026-07-28"}}}`,
			"io.modelcontextprotocol/protocolversion", "io.modelcontextprotocol/protocolVersion"},
		{`{"method":"resources/read","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"a","io.modelcontextprotocol/protocolVersion":"b"}}}`,
			"io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/protocolVersion"},
	}
	for _, tc := range refused {
		err := readErr([]byte(tc.msg))
		var amb *ambiguousError
		if !errors.As(err, &amb) || amb.Member != tc.member || amb.As != tc.as {
			t.Errorf("ReadMessage(%s) = %v, want member %q ambiguous as %q", tc.msg, err, tc.member, tc.as)
			continue
		}
		if !strings.Contains(err.Error(), tc.as) {
			t.Errorf("ReadMessage(%s) says %q, which does not name %q", tc.msg, err, tc.as)
		}
	}
	passed := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"Name":"x","name":"y","NAME":"z"},"_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","id":"a","method":"notifications/progress","params":{"progressToken":"t","progress":1}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi","Name":"n"}]}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"echo","nameHint":"x","named":1,"_name":2}}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","params":[1,2]}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
	}
	for _, msg := range passed {
		if err := readErr([]byte(msg)); err != nil {
			t.Errorf("ReadMessage(%s) = %v, want nil", msg, err)
		}
	}
	// A name a client sends reaches the answer and the log bounded.
	long := `{"method":"tools/call","params":{"name":"a","N` + strings.Repeat("\u200b", 500) + `ame":"b"}}`
	if err := readErr([]byte(long)); err == nil || len(err.Error()) > 400 {
		t.Errorf("a 1.5 KB member name: %v (%d bytes), want it refused in a bounded sentence", err, len(err.Error()))
	}
}

// TestReadMessageDepth: JSON nested past encoding/json's limit (10,000
// levels) is not JSON to ReadMessage either, at the same depth: a body
// the todo path's reader refuses is not one an upstream tenant reads.
func TestReadMessageDepth(t *testing.T) {
	for _, n := range []int{9997, 9998, 9999, 10000, 20000} {
		msg := []byte(`{"method":"x","params":{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`)
		_, err := ReadMessage(msg)
		if valid := json.Valid(msg); errors.Is(err, ErrNotJSON) == valid {
			t.Errorf("%d levels deep: ReadMessage %v, json.Valid %v", n+2, err, valid)
		}
	}
}

// The readers a message may meet: Go's encoding/json into struct fields
// (mcp-go, the gateway's own peek; any case, ſ and K folded, the last match
// winning) and readers of exact names, the last of equal names winning
// (JSON.parse, Python, go-sdk) or the first (some Java and Rust readers).

// eachMember calls f for each member of the JSON object obj, in order.
func eachMember(obj []byte, f func(name string, value json.RawMessage)) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return
		}
		var value json.RawMessage
		if dec.Decode(&value) != nil {
			return
		}
		f(t.(string), value)
	}
}

// exactMember is the member name of obj as a reader of exact names reads it.
func exactMember(obj []byte, name string, firstWins bool) json.RawMessage {
	var got json.RawMessage
	eachMember(obj, func(member string, value json.RawMessage) {
		if member == name && (got == nil || !firstWins) {
			got = value
		}
	})
	return got
}

// exactString is a string member as a reader of exact names reads it, ""
// when it is missing or no string.
func exactString(obj []byte, name string, firstWins bool) string {
	var s string
	_ = json.Unmarshal(exactMember(obj, name, firstWins), &s)
	return s
}

// callViews are the method and tool of a message as each reader reads them.
func callViews(msg []byte) map[string][2]string {
	var goView struct {
		Method string `json:"method"`
		Params struct {
			Name json.RawMessage `json:"name"`
		} `json:"params"`
	}
	_ = json.Unmarshal(msg, &goView)
	var tool string
	_ = json.Unmarshal(goView.Params.Name, &tool)
	views := map[string][2]string{"encoding/json": {goView.Method, tool}}
	for _, first := range []bool{false, true} {
		views[map[bool]string{false: "exact, last wins", true: "exact, first wins"}[first]] = [2]string{
			exactString(msg, "method", first), exactString(exactMember(msg, "params", first), "name", first)}
	}
	return views
}

// FuzzReadMessage: ReadMessage tells text that is not JSON, and JSON that
// is no object, exactly as encoding/json does; every message it lets
// through reads as the same method and tool to every reader, so the
// permission the gateway checks is the one the upstream's call needs; and
// the members it returns are those every reader reads.
func FuzzReadMessage(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
		`{"method":"tools/call","params":{"name":"get-env","Name":"echo"}}`,
		`{"method":"tools/call","Method":"ping","params":{"name":"get-env"}}`,
		`{"method":"tools/call","params":{"name":"get-env"},"paramſ":{"name":"echo"}}`,
		`{"method":"tools/call","params":{"name":"get-env"},"params":{"name":"echo"}}`,
		`{"method":"tools/call","params":{"name":"get-env","name\u0000":"echo"}}`,
		`{"method":"tools/call","params":{"na\u006de":"get-env"}}`,
		`{"method":"tools/caLL","params":{"NAMe":"x","name":7}}`,
		`{"method":"tools/call","params":{"name":"\ud800x"}} `,
		`{"method":"a"} {"method":"b"}`,
		`{"method":"a",}`,
		`[{"method":"a"}]`,
		"{\"method\":\"tools/call\",\"params\":{\"name\":\"e\xffcho\"}}",
		`{"method":"resources/read","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`{"method":"resources/read","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"x"},"_meta":{}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := ReadMessage(msg)
		valid := json.Valid(msg)
		object := valid && bytes.TrimLeft(msg, " \t\r\n")[0] == '{'
		switch {
		case errors.Is(err, ErrNotJSON) != !valid:
			t.Fatalf("ReadMessage(%q) = %v, but json.Valid says %v", msg, err, valid)
		case errors.Is(err, ErrNotObject) != (valid && !object):
			t.Fatalf("ReadMessage(%q) = %v for JSON that is an object: %v", msg, err, object)
		case err != nil:
			return
		}
		views := callViews(msg)
		if a, b, c := views["encoding/json"], views["exact, last wins"], views["exact, first wins"]; a != b || b != c {
			t.Fatalf("ReadMessage let through %q, which readers read apart: %v", msg, views)
		}
		for name, got := range map[string]json.RawMessage{"jsonrpc": m.JSONRPC, "id": m.ID, "method": m.Method,
			"params": m.Params, "result": m.Result, "error": m.Error} {
			if want := exactMember(msg, name, false); !bytes.Equal(got, want) {
				t.Fatalf("ReadMessage(%q) read %s as %q, readers as %q", msg, name, got, want)
			}
		}
		var name, version json.RawMessage
		if len(m.Params) > 0 && m.Params[0] == '{' {
			name = exactMember(m.Params, "name", false)
			if meta := exactMember(m.Params, "_meta", false); len(meta) > 0 && meta[0] == '{' {
				version = exactMember(meta, mcpgo.MetaKeyProtocolVersion, false)
			}
		}
		if !bytes.Equal(m.Name, name) {
			t.Fatalf("ReadMessage(%q) read params.name as %q, readers as %q", msg, m.Name, name)
		}
		if !bytes.Equal(m.ProtocolVersion, version) {
			t.Fatalf("ReadMessage(%q) read the protocol version as %q, readers as %q", msg, m.ProtocolVersion, version)
		}
	})
}

// toolsSeen are the tool names each reader finds in one answer: a message
// or a batch of them; and, under "cacheScope", the scope each reader finds
// in any result.
func toolsSeen(body []byte) map[string][]string {
	seen := map[string][]string{}
	var batch []json.RawMessage
	if json.Unmarshal(body, &batch) != nil {
		batch = []json.RawMessage{body}
	}
	for _, msg := range batch {
		var goView struct {
			Result struct {
				Tools []struct {
					Name string `json:"name"`
				} `json:"tools"`
				CacheScope string `json:"cacheScope"`
			} `json:"result"`
		}
		if json.Unmarshal(msg, &goView) == nil {
			for _, tool := range goView.Result.Tools {
				seen["encoding/json"] = append(seen["encoding/json"], tool.Name)
			}
			seen["cacheScope"] = append(seen["cacheScope"], goView.Result.CacheScope)
		}
		for _, first := range []bool{false, true} {
			result := exactMember(msg, "result", first)
			seen["cacheScope"] = append(seen["cacheScope"], exactString(result, "cacheScope", first))
			var tools []json.RawMessage
			if json.Unmarshal(exactMember(result, "tools", first), &tools) != nil || tools == nil {
				continue
			}
			for _, tool := range tools {
				seen["exact"] = append(seen["exact"], exactString(tool, "name", first))
			}
		}
	}
	return seen
}

// FuzzFilterMessages: whatever an upstream answers, no reader finds in
// the filtered answer a tool the caller may not call, nor a list (of
// tools, or any other) that a cache in front of the gateway may serve to
// another caller (a cacheScope other than private, or none).
func FuzzFilterMessages(f *testing.F) {
	for _, seed := range []string{
		toolsListAnswer,
		`{"jsonrpc":"2.0","id":1,"result":{"Tools":[{"name":"secret"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"toolſ":[{"name":"secret"}]}}`,
		`{"jsonrpc":"2.0","id":1,"Result":{"tools":[{"name":"secret"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","Name":"secret"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","name":"secret"}]}}`,
		`[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}]}},{"jsonrpc":"2.0","id":2,"result":{}}]`,
		`{"jsonrpc":"2.0","id":1,"result":{"tool\u0073":[{"n\u0061me":"secret"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"ttlMs":5,"cacheScope":"public"}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"resources":[],"cacheScope":"public"}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"prompts":[],"cacheſcope":"public"}}`,
		`[{"jsonrpc":"2.0","id":1,"result":{"prompts":[]}},{"jsonrpc":"2.0","id":2,"result":{"CacheScope":"public"}}]`,
	} {
		f.Add([]byte(seed))
	}
	keep := func(tool string) bool { return strings.HasPrefix(tool, "search") }
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := filterMessages(body, keep)
		if err != nil {
			return // answered 502: nothing of it reaches the client
		}
		checkFiltered(t, out, keep, "the filtered answer %q (from %q)", out, body)
	})
}

// checkFiltered fails the test when a reader finds in msg, a filtered
// answer (where says which, with its args), a tool keep refuses or a
// result with a cacheScope other than private.
func checkFiltered(t *testing.T, msg []byte, keep func(string) bool, where string, args ...any) {
	t.Helper()
	seen := toolsSeen(msg)
	for _, scope := range seen["cacheScope"] {
		if scope != "" && scope != "private" {
			t.Fatalf("a result with cacheScope %q in "+where, append([]any{scope}, args...)...)
		}
	}
	delete(seen, "cacheScope")
	for reader, names := range seen {
		for _, name := range names {
			if !keep(name) {
				t.Fatalf("%s reads the tool %q in "+where, append([]any{reader, name}, args...)...)
			}
		}
	}
}

// BenchmarkReadMessage: what reading and checking the members costs to each message an upstream
// tenant forwards (a tools/call as the wrk test's echo row sends it).
func BenchmarkReadMessage(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello from the benchmark"},"_meta":{"progressToken":1}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// specEvents are the data of the events a client that follows the SSE
// specification (WHATWG HTML, "Parsing an event stream"; eventsource-parser
// in the TypeScript SDK) reads from a stream: lines end at CRLF, LF or a
// lone CR; a data line's value is added to the event's data, joined by LF;
// an empty line dispatches the event if it has data; what follows the last
// empty line is discarded; a UTF-8 BOM opening the stream is stripped.
func specEvents(stream []byte) [][]byte {
	stream = bytes.TrimPrefix(stream, []byte("\xef\xbb\xbf"))
	var events [][]byte
	var data []byte
	hasData := false
	for len(stream) > 0 {
		i := bytes.IndexAny(stream, "\r\n")
		if i < 0 {
			break // an unterminated last line: discarded with its event
		}
		line := stream[:i]
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			i++
		}
		stream = stream[i+1:]
		switch {
		case len(line) == 0:
			if hasData {
				events = append(events, bytes.TrimSuffix(data, []byte("\n")))
			}
			data, hasData = nil, false
		case line[0] == ':':
		default:
			field, value, found := bytes.Cut(line, []byte(":"))
			if found && len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
			if string(field) == "data" {
				data = append(append(data, value...), '\n')
				hasData = true
			}
		}
	}
	return events
}

// FuzzEventFilter: whatever stream an upstream sends, a client that reads
// the filtered stream as the SSE specification says finds, in no event, a
// tool the caller may not call, nor a list another caller may be served.
func FuzzEventFilter(f *testing.F) {
	list := `{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"secret"},{"name":"search"}]}}`
	for _, seed := range []string{
		"event: message\ndata: " + list + "\n\n",
		"event: message\r\ndata: " + list + "\r\n\r\n",
		"event: message\rdata: " + list + "\r\r",
		"id: 1\rdata: " + list + "\r\n\r\n",
		"data: {\"a\":1}\r\rdata: " + list + "\n\n",
		"data: " + list + "\r\n\n",
		": comment\rdata: " + list + "\n\r",
		"\xef\xbb\xbfdata: " + list + "\n\n",
	} {
		f.Add([]byte(seed))
	}
	keep := func(tool string) bool { return strings.HasPrefix(tool, "search") }
	f.Fuzz(func(t *testing.T, stream []byte) {
		out, _ := io.ReadAll(newEventFilter(io.NopCloser(bytes.NewReader(stream)), keep, DefaultAnswerLimit))
		for _, data := range specEvents(out) {
			checkFiltered(t, data, keep, "an event of the filtered stream %q (from %q)", out, stream)
		}
	})
}
