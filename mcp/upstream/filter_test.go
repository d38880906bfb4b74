package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
)

// keepOnly keeps the named tools.
func keepOnly(names ...string) func(string) bool {
	return func(tool string) bool {
		for _, n := range names {
			if n == tool {
				return true
			}
		}
		return false
	}
}

// jsonValue decodes s, failing the test when it is no JSON.
func jsonValue(t *testing.T, what string, s []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s is not JSON (%v): %s", what, err, s)
	}
	if dec.More() {
		t.Fatalf("%s has more than one JSON value: %s", what, s)
	}
	return v
}

// checkSameJSON fails unless got and want are the same JSON value.
func checkSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	if g, w := jsonValue(t, "got", got), jsonValue(t, "want", want); !reflect.DeepEqual(g, w) {
		t.Errorf("got JSON\n\t%s\nwant\n\t%s", got, want)
	}
}

// checkListError checks that msg is the JSON-RPC error that replaces a tool
// list the filter could not read, answering id (raw JSON).
func checkListError(t *testing.T, msg []byte, id string) {
	t.Helper()
	var got struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
		Error   *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &got); err != nil {
		t.Fatalf("not a JSON-RPC message (%v): %s", err, msg)
	}
	if got.JSONRPC != "2.0" || string(got.ID) != id || got.Result != nil || got.Error == nil ||
		got.Error.Code != -32603 || got.Error.Message == "" {
		t.Errorf("got %s, want a JSON-RPC error -32603 with id %s and no result", msg, id)
	}
}

const toolsListAnswer = `{"jsonrpc":"2.0","id":1,"result":{` +
	`"tools":[` +
	`{"name":"search","description":"Find notes <b>fast</b> & well","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}}},` +
	`{"name":"delete_note","inputSchema":{"type":"object"}},` +
	`{"name":"public","annotations":{"readOnlyHint":true}}` +
	`],"nextCursor":"page-2","_meta":{"io.example/trace":"abc","n":1.50}}}`

func TestFilterMessagesToolsList(t *testing.T) {
	tests := []struct {
		name string
		body string
		keep func(string) bool
		want string
	}{
		{"keeps the allowed tools and every other member", toolsListAnswer, keepOnly("search", "public"),
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[` +
				`{"name":"search","description":"Find notes <b>fast</b> & well","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}}},` +
				`{"name":"public","annotations":{"readOnlyHint":true}}` +
				`],"nextCursor":"page-2","_meta":{"io.example/trace":"abc","n":1.50}}}`},
		{"no tool allowed is an empty list, not null", toolsListAnswer, keepOnly(),
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[],"nextCursor":"page-2","_meta":{"io.example/trace":"abc","n":1.50}}}`},
		{"every tool allowed", `{"jsonrpc":"2.0","id":"a","result":{"tools":[{"name":"x"},{"name":"y"}]}}`, keepOnly("x", "y"),
			`{"jsonrpc":"2.0","id":"a","result":{"tools":[{"name":"x"},{"name":"y"}]}}`},
		{"empty tool list", `{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}`, keepOnly("x"),
			`{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}`},
		{"whitespace around and inside the body", "\n\t {\n \"jsonrpc\" : \"2.0\" , \"id\" : 3 ,\n \"result\" : { \"tools\" : [ { \"name\" : \"x\" } , { \"name\" : \"y\" } ] } }\r\n",
			keepOnly("y"), `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"y"}]}}`},
		{"a tool name written with escapes", `{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"s\u0065arch"},{"name":"other"}]}}`,
			keepOnly("search"), `{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"search"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filterMessages([]byte(tt.body), tt.keep)
			if err != nil {
				t.Fatalf("filterMessages() error = %v", err)
			}
			checkSameJSON(t, got, []byte(tt.want))
		})
	}
}

func TestFilterMessagesKeepsIDExactly(t *testing.T) {
	for _, id := range []string{`1`, `"req-7"`, `12345678901234567890`, `1.0e3`, `null`, `"ü\u00fc"`} {
		t.Run(id, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":` + id + `,"result":{"tools":[{"name":"a"},{"name":"b"}]}}`
			got, err := filterMessages([]byte(body), keepOnly("b"))
			if err != nil {
				t.Fatalf("filterMessages() error = %v", err)
			}
			var env map[string]json.RawMessage
			if err := json.Unmarshal(got, &env); err != nil {
				t.Fatalf("output is not a JSON object: %s", got)
			}
			if string(env["id"]) != id {
				t.Errorf("id = %s, want %s exactly", env["id"], id)
			}
			if string(env["jsonrpc"]) != `"2.0"` {
				t.Errorf("jsonrpc = %s, want \"2.0\"", env["jsonrpc"])
			}
		})
	}
}

func TestFilterMessagesBatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"tool list among other messages",
			`[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"secret"}],"nextCursor":"n"}},` +
				`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"tools"}},` +
				`{"jsonrpc":"2.0","id":2,"result":{}}]`,
			`[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"nextCursor":"n"}},` +
				`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"tools"}},` +
				`{"jsonrpc":"2.0","id":2,"result":{}}]`},
		{"two tool lists",
			` [ {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}]}}, {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search"}]}} ] `,
			`[{"jsonrpc":"2.0","id":1,"result":{"tools":[]}},{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search"}]}}]`},
		{"an unreadable list fails alone",
			`[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"title":"no name"}]}},{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search"}]}}]`,
			`[{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"the upstream's list could not be read"}},` +
				`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search"}]}}]`},
		{"empty batch", `[]`, `[]`},
		{"batch without tools", `[{"jsonrpc":"2.0","id":1,"result":{"content":[]}},{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"m"}}]`,
			`[{"jsonrpc":"2.0","id":1,"result":{"content":[]}},{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"m"}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filterMessages([]byte(tt.body), keepOnly("search"))
			if err != nil {
				t.Fatalf("filterMessages() error = %v", err)
			}
			checkSameJSON(t, got, []byte(tt.want))
		})
	}
}

func TestFilterMessagesPassesOtherMessagesUnchanged(t *testing.T) {
	bodies := map[string]string{
		"tools/call result":           `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"3 notes"}],"isError":false}}`,
		"odd spacing kept":            `{ "jsonrpc" : "2.0", "id":1 , "result" : { } }`,
		"list_changed notification":   `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`,
		"tools in a request's params": `{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"tools":[{"name":"secret"}]}}`,
		"tools in an error's data":    `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x","data":{"tools":[{"name":"secret"}]}}}`,
		"tools nested deeper":         `{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"tools":[{"name":"secret"}]}}}`,
		"quoted tools in a text":      `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"the \"tools\" key"}]}}`,
		"result null":                 `{"jsonrpc":"2.0","id":1,"result":null,"tools":[]}`,
		"result a string":             `{"jsonrpc":"2.0","id":1,"result":"tools"}`,
		"a JSON string":               `"tools"`,
		"not JSON at all":             `not json`,
		"empty":                       ``,
		"HTML-sensitive characters":   `{"jsonrpc":"2.0","id":1,"result":{"text":"<a href='x'>&amp;</a>"}}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			got, err := filterMessages([]byte(body), keepOnly())
			if err != nil {
				t.Fatalf("filterMessages() error = %v", err)
			}
			if string(got) != body {
				t.Errorf("filterMessages() = %s, want the body unchanged: %s", got, body)
			}
		})
	}
}

func TestFilterMessagesFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		body string
		id   string // the raw id the error must carry
	}{
		{"tools is an object", `{"jsonrpc":"2.0","id":1,"result":{"tools":{"search":{}}}}`, `1`},
		{"tools is a string", `{"jsonrpc":"2.0","id":"abc","result":{"tools":"search"}}`, `"abc"`},
		{"tools is a number", `{"jsonrpc":"2.0","id":2,"result":{"tools":3}}`, `2`},
		{"a tool without name", `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search"},{"description":"secret"}]}}`, `3`},
		{"a tool with a numeric name", `{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":7}]}}`, `4`},
		{"a tool with a null name", `{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":null}]}}`, `5`},
		{"a tool that is a string", `{"jsonrpc":"2.0","id":6,"result":{"tools":["search"]}}`, `6`},
		{"a tool that is null", `{"jsonrpc":"2.0","id":7,"result":{"tools":[null]}}`, `7`},
		{"no id", `{"jsonrpc":"2.0","result":{"tools":{}}}`, `null`},
		{"large id", `{"jsonrpc":"2.0","id":98765432109876543210,"result":{"tools":[{}]}}`, `98765432109876543210`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filterMessages([]byte(tt.body), keepOnly("search"))
			if err != nil {
				t.Fatalf("filterMessages() error = %v", err)
			}
			checkListError(t, got, tt.id)
			if bytes.Contains(got, []byte("secret")) || bytes.Contains(got, []byte("tools")) {
				t.Errorf("the error carries part of the list: %s", got)
			}
		})
	}
}

func TestFilterMessagesBadArray(t *testing.T) {
	for _, body := range []string{`[{"jsonrpc":"2.0"},`, `[1 2]`, "  \n[", `[{"result":{"tools":[]}}]]`, `[}`} {
		t.Run(body, func(t *testing.T) {
			got, err := filterMessages([]byte(body), keepOnly())
			if !errors.Is(err, errBadAnswer) {
				t.Errorf("filterMessages(%q) error = %v, want one wrapping errBadAnswer", body, err)
			}
			if got != nil {
				t.Errorf("filterMessages(%q) = %q, want nil with the error", body, got)
			}
		})
	}
}

// The filter hides tools by what any JSON reader of the answer sees, so a
// key written with escapes is still the tools key.
func TestFilterMessagesEscapedToolsKey(t *testing.T) {

	body := `{"jsonrpc":"2.0","id":1,"result":{"tool\u0073":[{"name":"search"},{"name":"secret"}]}}`
	got, err := filterMessages([]byte(body), keepOnly("search"))
	if err != nil {
		t.Fatalf("filterMessages() error = %v", err)
	}
	checkSameJSON(t, got, []byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}`))
}

// A filtered list is the caller's own: a 2026-07-28 answer's cacheScope
// becomes private (SEP-2549), its ttlMs stays; an answer without one (an
// earlier protocol) gets none; a cacheScope readers could read apart fails
// closed.
func TestFilterMessagesCacheScopePrivate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"secret"}],"ttlMs":60000,"cacheScope":"public"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"ttlMs":60000,"cacheScope":"private"}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"ttlMs":0,"cacheScope":"private"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"ttlMs":0,"cacheScope":"private"}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}`},
	} {
		got, err := filterMessages([]byte(tc.in), keepOnly("search"))
		if err != nil {
			t.Fatalf("filterMessages(%s) error = %v", tc.in, err)
		}
		checkSameJSON(t, got, []byte(tc.want))
	}
	got, err := filterMessages([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[],"cacheScope":"private","cacheſcope":"public"}}`), keepOnly("search"))
	if err != nil {
		t.Fatal(err)
	}
	checkListError(t, got, "1")
}

// A result whose only change is its cacheScope keeps every other byte as
// the upstream wrote it (its value is written over in place, not the
// message encoded again), wherever the member sits and whatever precedes
// it: whitespace, escapes, nested objects, a value of another type.
func TestFilterMessagesCacheScopeInPlace(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a","text":"<b>&"}],"cacheScope":"public"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a","text":"<b>&"}],"cacheScope":"private"}}`},
		{"{ \"id\" : 7 ,\n \"result\" : { \"x\":{\"cacheScope\":\"public\"}, \"t\":\"\\u00e9\\\"\" ,\"cacheScope\" :\t\"public\" , \"ttlMs\":5 } }",
			"{ \"id\" : 7 ,\n \"result\" : { \"x\":{\"cacheScope\":\"public\"}, \"t\":\"\\u00e9\\\"\" ,\"cacheScope\" :\t\"private\" , \"ttlMs\":5 } }"},
		{`{"result":{"cacheScope":null},"id":"x"}`, `{"result":{"cacheScope":"private"},"id":"x"}`},
		{`{"result":{"cacheScope":{"a":[1,2]}},"id":2}`, `{"result":{"cacheScope":"private"},"id":2}`},
	} {
		got, err := filterMessages([]byte(tc.in), keepOnly())
		if err != nil || string(got) != tc.want {
			t.Errorf("filterMessages(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// Every list is the caller's own: the gateway decided who may have it
// (other_methods), so a prompts, resources or resource templates list
// marked public becomes private too, and one whose cacheScope readers
// could read apart fails closed; a list without one passes byte for byte.
func TestFilterMessagesOtherListsPrivate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///a","name":"a"}],"ttlMs":60000,"cacheScope":"public"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///a","name":"a"}],"ttlMs":60000,"cacheScope":"private"}}`},
		{`{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"p"}],"cacheScope":"public","nextCursor":"c"}}`,
			`{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"p"}],"cacheScope":"private","nextCursor":"c"}}`},
		{`{"jsonrpc":"2.0","id":3,"result":{"resourceTemplates":[],"cacheScope":"private"}}`,
			`{"jsonrpc":"2.0","id":3,"result":{"resourceTemplates":[],"cacheScope":"private"}}`},
	} {
		got, err := filterMessages([]byte(tc.in), keepOnly("search"))
		if err != nil {
			t.Fatalf("filterMessages(%s) error = %v", tc.in, err)
		}
		checkSameJSON(t, got, []byte(tc.want))
	}
	plain := `{"jsonrpc":"2.0","id":4,"result":{"prompts":[{"name":"p"}]}}`
	if got, err := filterMessages([]byte(plain), keepOnly("search")); err != nil || string(got) != plain {
		t.Errorf("filterMessages(%s) = %s, %v; want it as it came", plain, got, err)
	}
	for _, ambiguous := range []string{
		`{"jsonrpc":"2.0","id":5,"result":{"resources":[],"cacheſcope":"public"}}`,
		`{"jsonrpc":"2.0","id":5,"result":{"resources":[],"CacheScope":"public"}}`,
		`{"jsonrpc":"2.0","id":5,"result":{"resources":[],"cacheScope":"private","cacheScope":"public"}}`,
	} {
		got, err := filterMessages([]byte(ambiguous), keepOnly("search"))
		if err != nil {
			t.Fatal(err)
		}
		checkListError(t, got, "5")
	}
}

// A tool is kept or dropped by its "name" member exactly as MCP clients
// read it (JSON member names are case-sensitive).
func TestFilterMessagesToolNameCase(t *testing.T) {

	body := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret","Name":"search"},{"name":"search"}]}}`
	got, err := filterMessages([]byte(body), keepOnly("search"))
	if err != nil {
		t.Fatalf("filterMessages() error = %v", err)
	}
	if bytes.Contains(got, []byte(`"secret"`)) {
		t.Errorf("filterMessages() = %s, want the tool named \"secret\" left out (or the list refused)", got)
	}
}

// sseEvents splits an SSE stream into its events, each the list of its
// lines without terminators (LF or CRLF); a last event without its blank
// line is kept.
func sseEvents(s string) [][]string {
	var events [][]string
	var cur []string
	lines := strings.SplitAfter(s, "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if l == "" {
			events = append(events, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	if cur != nil {
		events = append(events, cur)
	}
	return events
}

// checkEvents compares the events of got with want, line by line; a data
// line whose wanted value is a JSON object or array is compared as JSON.
func checkEvents(t *testing.T, got string, want [][]string) {
	t.Helper()
	events := sseEvents(got)
	if len(events) != len(want) {
		t.Fatalf("got %d events, want %d; stream:\n%q", len(events), len(want), got)
	}
	for i := range want {
		if len(events[i]) != len(want[i]) {
			t.Errorf("event %d: got lines %q, want %q", i, events[i], want[i])
			continue
		}
		for j, w := range want[i] {
			g := events[i][j]
			wv, isData := strings.CutPrefix(w, "data: ")
			if isData && (strings.HasPrefix(wv, "{") || strings.HasPrefix(wv, "[")) {
				gv, ok := strings.CutPrefix(g, "data:")
				if !ok {
					t.Errorf("event %d line %d: got %q, want a data line", i, j, g)
					continue
				}
				checkSameJSON(t, []byte(strings.TrimPrefix(gv, " ")), []byte(wv))
				continue
			}
			if g != w {
				t.Errorf("event %d line %d: got %q, want %q", i, j, g, w)
			}
		}
	}
}

// filterStream runs the event filter over in to its end.
func filterStream(t *testing.T, in io.Reader, keep func(string) bool) (string, error) {
	t.Helper()
	f := newEventFilter(io.NopCloser(in), keep, DefaultAnswerLimit)
	out, err := io.ReadAll(f)
	return string(out), err
}

const (
	progressEvent = "event: message\n" +
		`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t1","progress":50,"total":100}}` + "\n\n"
	primingEvent   = "id: 0\ndata: \n\n"
	keepaliveEvent = ": keepalive\n\n"
	toolsEvent     = "event: message\nid: 7\n" +
		`data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"secret"}],"nextCursor":"c2"}}` + "\n\n"
	toolsEventData = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"nextCursor":"c2"}}`
)

func TestEventFilterStream(t *testing.T) {
	in := progressEvent + primingEvent + keepaliveEvent + toolsEvent + progressEvent
	out, err := filterStream(t, strings.NewReader(in), keepOnly("search"))
	if err != nil {
		t.Fatalf("reading the filter: %v", err)
	}
	checkEvents(t, out, [][]string{
		{"event: message", `data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t1","progress":50,"total":100}}`},
		{"id: 0", "data: "},
		{": keepalive"},
		{"event: message", "id: 7", "data: " + toolsEventData},
		{"event: message", `data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t1","progress":50,"total":100}}`},
	})
	// What is not a tool list passes byte for byte.
	if want := progressEvent + primingEvent + keepaliveEvent; !strings.HasPrefix(out, want) {
		t.Errorf("stream starts %q, want it to start with the first three events unchanged %q", out, want)
	}
	if !strings.HasSuffix(out, progressEvent) {
		t.Errorf("stream ends %q, want it to end with the last event unchanged", out)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("a tool the caller may not call is in the stream: %q", out)
	}
}

func TestEventFilterEvents(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want [][]string // nil: the output is the input, byte for byte
	}{
		{"notification", progressEvent, nil},
		{"priming event with an empty data line", primingEvent, nil},
		{"priming event with only an id", "id: evt-0\n\n", nil},
		{"priming event with bare data field", "id: 1\ndata\n\n", nil},
		{"comment only", keepaliveEvent, nil},
		{"comments without a space, and retry", ":\n:ping\nretry: 3000\n\n", nil},
		{"blank lines between events", "\n\n" + progressEvent + "\n", nil},
		{"multi-line data without tools", "data: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"ping\",\"id\":3}\n\n", nil},
		{"data that is not JSON but names tools: fails closed", "data: tools are great\ndata: \"tools\"\n\n",
			[][]string{{`data: {"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"the upstream's list could not be read"}}`}}},
		{"a request from the upstream naming tools", `data: {"jsonrpc":"2.0","id":9,"method":"sampling/createMessage","params":{"tools":[{"name":"secret"}]}}` + "\n\n", nil},
		{"notification with CRLF", strings.ReplaceAll(progressEvent, "\n", "\r\n"), nil},
		{"notification without a final blank line", strings.TrimSuffix(progressEvent, "\n\n"), nil},
		{"notification without a final line break", strings.TrimSuffix(progressEvent, "\n"), nil},

		{"tools/list response", toolsEvent,
			[][]string{{"event: message", "id: 7", "data: " + toolsEventData}}},
		{"field order and other fields kept", "id: 8\n: a comment\n" +
			`data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}]}}` + "\nretry: 500\n\n",
			[][]string{{"id: 8", ": a comment", `data: {"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`, "retry: 500"}}},
		{"data without a space after the colon", `data:{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search"},{"name":"secret"}]}}` + "\n\n",
			[][]string{{`data: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search"}]}}`}}},
		{"multi-line data joined with LF", "id: 9\n" +
			"data: {\"jsonrpc\":\"2.0\",\"id\":3,\n" +
			"data: \"result\":{\"tools\":[{\"name\":\"secret\"},\n" +
			"data: {\"name\":\"search\"}]}}\n\n",
			[][]string{{"id: 9", `data: {"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search"}]}}`}}},
		{"CRLF line endings", strings.ReplaceAll(toolsEvent, "\n", "\r\n"),
			[][]string{{"event: message", "id: 7", "data: " + toolsEventData}}},
		{"stream ending without a final blank line", strings.TrimSuffix(toolsEvent, "\n"),
			[][]string{{"event: message", "id: 7", "data: " + toolsEventData}}},
		{"stream ending without a final line break", strings.TrimSuffix(toolsEvent, "\n\n"),
			[][]string{{"event: message", "id: 7", "data: " + toolsEventData}}},
		{"unreadable tool list", "id: 10\n" + `data: {"jsonrpc":"2.0","id":"x1","result":{"tools":[{"title":"secret"}]}}` + "\n\n",
			[][]string{{"id: 10", `data: {"jsonrpc":"2.0","id":"x1","error":{"code":-32603,"message":"the upstream's list could not be read"}}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The same output whatever the source's chunking and the
			// reader's buffer size.
			sources := map[string]func() io.Reader{
				"whole":    func() io.Reader { return strings.NewReader(tt.in) },
				"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(tt.in)) },
				"halves":   func() io.Reader { return iotest.HalfReader(strings.NewReader(tt.in)) },
			}
			for name, src := range sources {
				for _, small := range []bool{false, true} {
					f := newEventFilter(io.NopCloser(src()), keepOnly("search"), DefaultAnswerLimit)
					var r io.Reader = f
					if small {
						r = iotest.OneByteReader(f)
					}
					b, err := io.ReadAll(r)
					if err != nil {
						t.Fatalf("%s source, small reads %v: error %v", name, small, err)
					}
					out := string(b)
					if tt.want == nil {
						if out != tt.in {
							t.Errorf("%s source, small reads %v: got %q, want the input unchanged %q", name, small, out, tt.in)
						}
						continue
					}
					checkEvents(t, out, tt.want)
					if strings.Contains(out, "secret") {
						t.Errorf("%s source: a hidden tool is in the stream: %q", name, out)
					}
				}
			}
		})
	}
}

// TestEventFilterLineEndings: lines end at CRLF, LF or a lone CR, as the
// SSE specification and every client say, and a BOM opening the stream is
// not part of its first line. Events that need no filtering
// pass byte for byte whichever ending they use, a CRLF split between two
// reads included; a tool list framed with lone CRs ("event: message\rdata:
// …") is filtered, where reading lines at LF alone passed it whole to the
// client; and an event that a lone CR ends is passed on at once, not held
// for a byte that might follow.
func TestEventFilterLineEndings(t *testing.T) {
	var plain strings.Builder
	for _, end := range []string{"\n", "\r\n", "\r"} {
		plain.WriteString(strings.ReplaceAll(progressEvent+primingEvent+keepaliveEvent, "\n", end))
	}
	out, err := filterStream(t, iotest.OneByteReader(strings.NewReader(plain.String())), keepOnly("search"))
	if err != nil || out != plain.String() {
		t.Errorf("got %q, %v; want the events as they came, %q", out, err, plain.String())
	}
	for _, end := range []string{"\r", "\r\n", "\n with a BOM"} {
		in := strings.ReplaceAll(toolsEvent, "\n", end)
		if end == "\n with a BOM" { // a UTF-8 BOM opens the stream, before a data line: clients strip it
			in = "\uFEFF" + strings.TrimPrefix(toolsEvent, "event: message\nid: 7\n")
		}
		out, err := filterStream(t, iotest.OneByteReader(strings.NewReader(in)), keepOnly("search"))
		events := specEvents([]byte(out))
		if err != nil || len(events) != 1 {
			t.Errorf("tool list with lines ended by %q: a client reads %q (%v) in %q; want one event", end, events, err, out)
			continue
		}
		checkSameJSON(t, events[0], []byte(toolsEventData))
	}

	pr, pw := io.Pipe()
	defer pr.Close()
	f := newEventFilter(pr, keepOnly("search"), DefaultAnswerLimit)
	go func() { _, _ = pw.Write([]byte(strings.ReplaceAll(progressEvent, "\n", "\r"))) }()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := f.Read(buf)
		got <- string(buf[:n])
	}()
	select {
	case s := <-got:
		if want := strings.ReplaceAll(progressEvent, "\n", "\r"); s != want {
			t.Errorf("Read = %q, want %q", s, want)
		}
	case <-time.After(3 * time.Second):
		t.Error("an event ended by a lone CR was held for the next byte")
	}
	_ = pw.Close()
}

func TestEventFilterCRLFKeepsOtherLines(t *testing.T) {
	in := strings.ReplaceAll(toolsEvent, "\n", "\r\n")
	out, err := filterStream(t, strings.NewReader(in), keepOnly("search"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "event: message\r\nid: 7\r\n") {
		t.Errorf("got %q, want the event and id lines kept with their CRLF", out)
	}
	if !strings.HasSuffix(out, "\n\r\n") {
		t.Errorf("got %q, want the event still ended by its blank line", out)
	}
}

// repeatReader is an endless source of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestEventFilterTooLarge(t *testing.T) {
	huge := func(n int64) io.Reader { return io.LimitReader(repeatReader('a'), n) }
	tests := []struct {
		name    string
		src     func() io.Reader
		wantOut string
	}{
		{"one line over the limit", func() io.Reader {
			return io.MultiReader(strings.NewReader(progressEvent+"data: "), huge(DefaultAnswerLimit), strings.NewReader("\n\n"))
		}, progressEvent},
		{"many lines over the limit", func() io.Reader {
			var rs []io.Reader
			line := "data: " + strings.Repeat("b", 1<<20-7) + "\n" // 1 MiB a line
			for range DefaultAnswerLimit>>20 + 1 {
				rs = append(rs, strings.NewReader(line))
			}
			return io.MultiReader(append(rs, strings.NewReader("\n"))...)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := filterStream(t, tt.src(), keepOnly())
			if !errors.Is(err, errEventTooLarge) {
				t.Fatalf("error = %v, want errEventTooLarge", err)
			}
			if out != tt.wantOut {
				t.Errorf("got %d bytes starting %.80q, want %q before the error", len(out), out, tt.wantOut)
			}
		})
	}
	t.Run("an event at the limit passes", func(t *testing.T) {
		// Over bufio's buffer, so the line is read in many pieces.
		data := "data: " + strings.Repeat("c", 200<<10) + "\n\n"
		out, err := filterStream(t, strings.NewReader(data), keepOnly())
		if err != nil || out != data {
			t.Errorf("got %d bytes, error %v; want the %d bytes unchanged", len(out), err, len(data))
		}
	})
}

// The tenant's answer_limit is the filter's: an event over it fails, one
// under it passes whole.
func TestEventFilterAnswerLimit(t *testing.T) {
	const limit = 64 << 10
	for _, tt := range []struct {
		size    int
		wantErr bool
	}{{limit - 100, false}, {limit + 1, true}, {4 * limit, true}} {
		data := "data: " + strings.Repeat("d", tt.size) + "\n\n"
		out, err := io.ReadAll(newEventFilter(io.NopCloser(strings.NewReader(data)), keepOnly(), limit))
		if tt.wantErr {
			if !errors.Is(err, errEventTooLarge) || len(out) != 0 {
				t.Errorf("%d bytes under a limit of %d: %d bytes out, error %v; want none, errEventTooLarge", tt.size, limit, len(out), err)
			}
		} else if err != nil || string(out) != data {
			t.Errorf("%d bytes under a limit of %d: %d bytes out, error %v; want them whole", tt.size, limit, len(out), err)
		}
	}
}

// In 2025-03-26 an event's data may be a batch answer (the gateway
// forwards a client's batch as it is): its tool lists are filtered too.
func TestEventFilterBatchInOneEvent(t *testing.T) {

	in := "id: 3\n" + `data: [{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"secret"}]}}]` + "\n\n"
	out, err := filterStream(t, strings.NewReader(in), keepOnly("search"))
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, out, [][]string{{"id: 3", `data: [{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}]`}})
}

// What was read of an event too large to hold is not passed on: it may be
// the start of a tool list the filter could not check.
func TestEventFilterTooLargeLeaksNothing(t *testing.T) {

	in := io.MultiReader(strings.NewReader("id: 7\n"+`data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"},`+"\ndata: "),
		io.LimitReader(repeatReader(' '), DefaultAnswerLimit), strings.NewReader("]}}\n\n"))
	out, err := filterStream(t, in, keepOnly())
	if !errors.Is(err, errEventTooLarge) {
		t.Fatalf("error = %v, want errEventTooLarge", err)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("got %q before the error, want nothing of the oversized event", out)
	}
}

// readResult is what one Read returned.
type readResult struct {
	data string
	err  error
}

// Each event reaches the reader as soon as it has been read whole, before
// the upstream sends the next one.
func TestEventFilterStreams(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	f := newEventFilter(pr, keepOnly("search"), DefaultAnswerLimit)

	readOnce := func() <-chan readResult {
		ch := make(chan readResult, 1)
		go func() {
			buf := make([]byte, 64<<10)
			n, err := f.Read(buf)
			ch <- readResult{string(buf[:n]), err}
		}()
		return ch
	}
	write := func(s string) {
		go func() { _, _ = pw.Write([]byte(s)) }()
	}
	wait := func(ch <-chan readResult, what string) readResult {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(3 * time.Second):
			pw.CloseWithError(errors.New("test timed out"))
			t.Fatalf("Read did not return %s within 3s", what)
			return readResult{}
		}
	}

	write(progressEvent)
	if r := wait(readOnce(), "the first event"); r.err != nil || r.data != progressEvent {
		t.Fatalf("first Read = %q, %v; want %q", r.data, r.err, progressEvent)
	}

	// A tool list split over two writes is held until it is whole.
	half := len(toolsEvent) / 2
	write(toolsEvent[:half])
	ch := readOnce()
	select {
	case r := <-ch:
		t.Fatalf("Read returned %q, %v with half an event", r.data, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	write(toolsEvent[half:])
	r := wait(ch, "the second event")
	if r.err != nil {
		t.Fatalf("second Read error: %v", r.err)
	}
	checkEvents(t, r.data, [][]string{{"event: message", "id: 7", "data: " + toolsEventData}})

	go func() { _ = pw.Close() }()
	if r := wait(readOnce(), "the end of the stream"); r.err != io.EOF || r.data != "" {
		t.Errorf("Read at the end = %q, %v; want io.EOF", r.data, r.err)
	}
}

// closeRecorder notes Close.
type closeRecorder struct {
	io.Reader
	closed int
}

func (c *closeRecorder) Close() error { c.closed++; return nil }

func TestEventFilterClose(t *testing.T) {
	src := &closeRecorder{Reader: strings.NewReader(progressEvent)}
	f := newEventFilter(src, keepOnly(), DefaultAnswerLimit)
	if err := f.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if src.closed != 1 {
		t.Errorf("source closed %d times, want 1", src.closed)
	}
}

func TestEventFilterSourceError(t *testing.T) {
	boom := errors.New("connection reset")
	in := io.MultiReader(strings.NewReader(progressEvent), iotest.ErrReader(boom))
	out, err := filterStream(t, in, keepOnly())
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want %v", err, boom)
	}
	if out != progressEvent {
		t.Errorf("got %q before the error, want the whole first event %q", out, progressEvent)
	}
}

// mentionsByLowerCopy is the quick check as first written: the whole
// message lowercased (Unicode), then searched.
func mentionsByLowerCopy(msg []byte) bool {
	lower := bytes.ToLower(msg)
	return bytes.Contains(lower, []byte("tool")) || bytes.Contains(lower, []byte("cache")) || bytes.Contains(msg, []byte(`\u`))
}

// TestMayNameFiltered holds the windowed check to the whole-message one,
// for the words at every offset around the windows' edges, in any case.
func TestMayNameFiltered(t *testing.T) {
	// Only ASCII letters lowercase to the words' letters, so lowercasing
	// ASCII alone finds what Unicode lowercasing finds.
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if l := unicode.ToLower(r); strings.ContainsRune("toolcache", l) {
			t.Fatalf("%U lowercases to %q", r, l)
		}
	}
	for _, word := range []string{"tool", "TOOL", "tOoL", "cache", "CacheScope", `\u0074`} {
		for size := 0; size < 1600; size += 37 {
			for _, at := range []int{0, 1, 505, 506, 507, 508, 509, 510, 511, 512, 1013, 1016, 1018, 1020} {
				if at > size {
					continue
				}
				msg := []byte(strings.Repeat("x", at) + word + strings.Repeat("y", size-at))
				if !mayNameFiltered(msg) || !mentionsByLowerCopy(msg) {
					t.Fatalf("%q at %d of %d bytes: windowed %v, whole %v", word, at, len(msg), mayNameFiltered(msg), mentionsByLowerCopy(msg))
				}
			}
		}
	}
	for _, msg := range []string{"", "{}", strings.Repeat("too", 400) + "l", strings.Repeat("cach", 300), "t\xffool", "K", `{"method":"notifications/progress","params":{"progress":1}}`} {
		if got, want := mayNameFiltered([]byte(msg)), mentionsByLowerCopy([]byte(msg)); got != want {
			t.Errorf("%q: windowed %v, whole %v", msg, got, want)
		}
	}
}

func FuzzMayNameFiltered(f *testing.F) {
	f.Add([]byte(`{"result":{"tools":[]}}`))
	f.Add([]byte(strings.Repeat("a", 509) + "CACHE"))
	f.Add([]byte("t\xffool ToOl"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if got, want := mayNameFiltered(msg), mentionsByLowerCopy(msg); got != want {
			t.Fatalf("%q: windowed %v, whole %v", msg, got, want)
		}
	})
}

func BenchmarkFilterNotification(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p-17","progress":3,"total":10,"message":"` + strings.Repeat("working ", 40) + `"}}`)
	keep := keepOnly("echo")
	b.ReportAllocs()
	for b.Loop() {
		filterMessage(msg, keep)
	}
}
