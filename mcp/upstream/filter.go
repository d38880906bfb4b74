package upstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// A tools/list answer is filtered to the tools the caller may call, so that
// a client never offers its user a tool the gateway will refuse; the same
// rule (Config.mayCall) decides the list and the call. Every result that
// carries cache hints (2026-07-28's CacheableResult) is the caller's own,
// so its cacheScope becomes private (FilterAnswer says which answers are
// read). An answer is a JSON-RPC response, or an array of them (a
// 2025-03-26 batch); in an SSE stream, each event's data is one message,
// and only responses carrying result.tools or result.cacheScope are
// rewritten: notifications and requests pass byte for byte. A response
// whose list or hints cannot be read is replaced by a JSON-RPC error: the
// filter fails closed, never passing what it could not check.

// FilterAnswer reports whether the answer to method is read and filtered
// (Call.Filter): tools/list for its tools; the other lists and
// server/discover, small, always; resources/read, which may be large and
// is otherwise streamed, only when hints says the request is under a
// protocol version whose results carry cache hints (2026-07-28 on, named
// by the request's Mcp-Protocol-Version or its _meta). These are the
// methods of 2026-07-28's cacheable results.
func FilterAnswer(method string, hints bool) bool {
	switch method {
	case "tools/list", "prompts/list", "resources/list", "resources/templates/list", "server/discover":
		return true
	case "resources/read":
		return hints
	}
	return false
}

// filterMessages filters the answers of one JSON body: a message or an
// array of messages (a batch's answers). A body that names no tool list and
// no cacheScope is returned as it is.
func filterMessages(body []byte, keep func(string) bool) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var msgs []json.RawMessage
		if err := json.Unmarshal(trimmed, &msgs); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadAnswer, err)
		}
		for i, m := range msgs {
			msgs[i] = filterMessage(m, keep)
		}
		return json.Marshal(msgs)
	}
	if out := filterMessage(trimmed, keep); !bytes.Equal(out, trimmed) {
		return out, nil
	}
	return body, nil
}

// filterMessage filters one message: its tool list to the tools keep
// keeps, its cacheScope to private; a message that is no response with
// result.tools or result.cacheScope is returned as it is.
func filterMessage(msg []byte, keep func(string) bool) []byte {
	if !mayNameFiltered(msg) {
		return msg
	}
	// The members the filter reads, each as every client reads it: a
	// member that clients could read apart fails closed, and so does text
	// that is not JSON, such as a list the stream cut short, rather than
	// pass what could not be checked.
	top, topAt, err := checkMembersAt(msg, "the message", "id", "result")
	if errors.Is(err, ErrNotObject) {
		return msg // valid JSON, not an object: no list to filter
	}
	if err != nil {
		return unreadableList(nil)
	}
	id, rawResult := top[0], top[1]
	if rawResult == nil {
		return msg
	}
	inResult, resultAt, err := checkMembersAt(rawResult, "result", "tools", "cacheScope")
	switch {
	case errors.Is(err, ErrNotObject):
		return msg
	case err != nil:
		return unreadableList(id)
	}
	rawTools, scope := inResult[0], inResult[1]
	if rawTools == nil && (scope == nil || string(scope) == privateScope) {
		return msg
	}
	// A cacheScope is made private: the result is the caller's own. The
	// gateway decided who may have it (the tools it shows, the permission
	// other_methods asks for, a valid token for anything), and a
	// 2026-07-28 upstream's "public" (SEP-2549: any shared intermediary
	// may serve it to anyone) would let a cache in front of the gateway
	// serve it to callers the gateway never checked.
	if rawTools == nil {
		// The hint alone: its value is written over where it is, so that
		// a large result (resources/read) is neither decoded nor encoded
		// again, and the rest passes as the upstream wrote it.
		at := topAt[1] + resultAt[1]
		return slices.Concat(msg[:at], []byte(privateScope), msg[at+len(scope):])
	}
	var env, result map[string]json.RawMessage
	if json.Unmarshal(msg, &env) != nil || json.Unmarshal(rawResult, &result) != nil {
		return unreadableList(id)
	}
	kept, ok := keptTools(rawTools, keep)
	if !ok {
		return unreadableList(id)
	}
	result["tools"], _ = json.Marshal(kept)
	if scope != nil {
		result["cacheScope"] = json.RawMessage(privateScope)
	}
	env["result"], _ = json.Marshal(result)
	out, err := json.Marshal(env)
	if err != nil {
		return unreadableList(id)
	}
	return out
}

const privateScope = `"private"`

// mayNameFiltered reports whether msg may hold a member the filter reads,
// so that most messages pass without parsing. A member that some reader
// takes for tools or cacheScope (members.go) is spelled with "tool" or
// "cache" in any case (no other letter of theirs folds to anything but its
// own case, and ſ, which reads as s, keeps "tool" and "cache" whole), or
// with escapes ("tool\u0073"). It looks through an ASCII-lowercased copy
// of a few hundred bytes at a time, so it allocates nothing, whatever the
// message's size: it runs on every event of a filtered stream.
func mayNameFiltered(msg []byte) bool {
	if bytes.Contains(msg, []byte(`\u`)) {
		return true
	}
	const overlap = len("cache") - 1 // a word across two windows is seen whole in the second
	var window [512]byte
	for start := 0; start < len(msg); start += len(window) - overlap {
		n := copy(window[:], msg[start:])
		lower := window[:n]
		for i, c := range lower {
			if 'A' <= c && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		if bytes.Contains(lower, []byte("tool")) || bytes.Contains(lower, []byte("cache")) {
			return true
		}
		if start+n == len(msg) {
			break
		}
	}
	return false
}

// keptTools are the tools of a tool list (result.tools, as written) that
// keep keeps; ok false when the list cannot be read as every client reads
// it.
func keptTools(rawTools json.RawMessage, keep func(string) bool) (kept []json.RawMessage, ok bool) {
	var tools []json.RawMessage
	if err := json.Unmarshal(rawTools, &tools); err != nil {
		return nil, false
	}
	kept = make([]json.RawMessage, 0, len(tools))
	for _, t := range tools {
		member, err := checkMembers(t, "a tool", "name")
		if err != nil || !jsonString(member[0]) {
			return nil, false
		}
		if keep(StringValue(member[0])) {
			kept = append(kept, t)
		}
	}
	return kept, true
}

// jsonString reports whether v is a JSON string (not null, which decodes
// into a string as "").
func jsonString(v json.RawMessage) bool { return len(v) > 0 && v[0] == '"' }

func unreadableList(id json.RawMessage) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": -32603, "message": "the upstream's list could not be read"}})
	return b
}

// errEventTooLarge: an SSE event over the filter's limit (Config.AnswerLimit).
var errEventTooLarge = errors.New("an SSE event over server.answer_limit")

// eventFilter is an SSE body that passes each event on as soon as it has
// been read whole, with its tool list filtered. Memory per stream is one
// event, of at most limit bytes: an event is held whole (it may be one
// response), and nothing more.
type eventFilter struct {
	src   io.ReadCloser
	in    *bufio.Reader
	keep  func(string) bool
	limit int64
	out   bytes.Buffer // what is ready for Read
	err   error
	// afterCR: the last line read ended with a CR that was the last byte
	// read so far; an LF coming next makes that CRLF.
	afterCR bool
	// started: the stream's first line has been read.
	started bool
}

// utf8BOM may open a stream; a client's UTF-8 decoder strips it, so
// "\uFEFFdata: …" is a data line to the client, and must be to the filter.
var utf8BOM = []byte("\xef\xbb\xbf")

func newEventFilter(src io.ReadCloser, keep func(string) bool, limit int64) io.ReadCloser {
	return &eventFilter{src: src, in: bufio.NewReaderSize(src, 32<<10), keep: keep, limit: limit}
}

func (f *eventFilter) Read(p []byte) (int, error) {
	for f.out.Len() == 0 && f.err == nil {
		f.err = f.nextEvent()
	}
	if f.out.Len() > 0 {
		return f.out.Read(p)
	}
	return 0, f.err
}

func (f *eventFilter) Close() error { return f.src.Close() }

// nextEvent reads lines up to the end of one event (an empty line) and
// puts the event, filtered, in out.
func (f *eventFilter) nextEvent() error {
	var lines [][]byte
	var size int64
	for {
		if f.afterCR {
			// The CR of a CRLF split across reads: the LF ends the same
			// line (the client reads one terminator), not a blank line.
			f.afterCR = false
			if b, err := f.in.Peek(1); err == nil && b[0] == '\n' {
				_, _ = f.in.Discard(1)
				if n := len(lines); n > 0 {
					lines[n-1] = append(lines[n-1], '\n')
				} else {
					f.out.WriteByte('\n') // after the event that line ended
				}
			}
		}
		line, err := f.readLine()
		if !f.started && len(line) > 0 {
			f.started = true
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if len(line) > 0 {
			size += int64(len(line))
			if size > f.limit {
				return errEventTooLarge
			}
			lines = append(lines, line)
		}
		if errors.Is(err, io.EOF) {
			// The upstream closed without a final blank line: what was
			// read is passed on, filtered (a tool list cut short is not
			// JSON, and fails closed).
			f.emit(lines)
			return err
		}
		if err != nil {
			// An event too large, or a failed read: what was read of the
			// event is dropped, so that no unchecked part of a tool list
			// leaves the gateway.
			return err
		}
		if isBlank(line) {
			f.emit(lines)
			return nil
		}
	}
}

// readLine reads one line with its terminator: CRLF, LF or a lone CR, the
// three the SSE specification ends lines with. A client splits lines at
// each (eventsource-parser in the TypeScript SDK does), so the filter must
// too: a line it took whole as "event: x\rdata: …" is two lines to the
// client, the second a data line it never checked. Lines grow past
// bufio's buffer up to the filter's limit.
func (f *eventFilter) readLine() ([]byte, error) {
	var line []byte
	for {
		if _, err := f.in.Peek(1); err != nil {
			return line, err
		}
		buf, _ := f.in.Peek(f.in.Buffered())
		if i := bytes.IndexAny(buf, "\r\n"); i >= 0 {
			end := i + 1
			if buf[i] == '\r' {
				switch {
				case end == len(buf):
					f.afterCR = true // the LF of a CRLF may be yet to come
				case buf[end] == '\n':
					end++
				}
			}
			line = append(line, buf[:end]...)
			_, _ = f.in.Discard(end)
			return line, nil
		}
		line = append(line, buf...)
		_, _ = f.in.Discard(len(buf))
		if int64(len(line)) > f.limit {
			return nil, errEventTooLarge
		}
	}
}

func isBlank(line []byte) bool { return len(bytes.TrimRight(line, "\r\n")) == 0 }

// emit writes an event: as it came, unless its data is a response whose
// tool list the filter changes; then the data lines are replaced by one,
// and every other field line (id, event, retry, comments) is kept.
func (f *eventFilter) emit(lines [][]byte) {
	var data [][]byte
	for _, l := range lines {
		if v, ok := fieldValue(l, "data"); ok {
			data = append(data, v)
		}
	}
	if len(data) > 0 {
		joined := bytes.Join(data, []byte("\n"))
		filtered, err := filterMessages(joined, f.keep)
		if err != nil { // a batch that is no JSON array: fail closed
			filtered = unreadableList(nil)
		}
		if !bytes.Equal(filtered, joined) {
			wrote := false
			for _, l := range lines {
				if _, ok := fieldValue(l, "data"); ok {
					if !wrote {
						f.out.WriteString("data: ")
						f.out.Write(filtered)
						f.out.WriteByte('\n')
						wrote = true
					}
					continue
				}
				f.out.Write(l)
			}
			return
		}
	}
	for _, l := range lines {
		f.out.Write(l)
	}
}

// fieldValue is the value of an SSE line of field name: what follows the
// colon, less one leading space and the line terminator.
func fieldValue(line []byte, name string) ([]byte, bool) {
	line = bytes.TrimRight(line, "\r\n")
	rest, ok := bytes.CutPrefix(line, []byte(name))
	if !ok {
		return nil, false
	}
	if len(rest) == 0 {
		return rest, true // "data" alone: an empty value
	}
	if rest[0] != ':' {
		return nil, false
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest, true
}
