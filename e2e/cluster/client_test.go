package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// todo is a todo as the tools return it.
type todo struct {
	ID        string `json:"id"`
	Content   string `json:"content"`
	OwnerID   string `json:"ownerId"`
	CreatedAt string `json:"createdAt"`
}

type opKind string

const (
	opCreate  opKind = "create"
	opDelete  opKind = "delete"
	opList    opKind = "list"     // get-todos with read:todos: the whole tenant, one page of up to 1000
	opListOwn opKind = "list-own" // get-todos without read:todos: the caller's own, every page of 10
)

type outcome string

const (
	// ok: the operation happened, with the answer recorded.
	ok outcome = "ok"
	// refused: a definite no (delete's "Failed to delete todo"): nothing
	// changed.
	refused outcome = "refused"
	// failed: an error (transport, proxy, store unavailable): the
	// operation may have happened or not.
	failed outcome = "error"
)

// op is one operation of the history and its answer.
type op struct {
	client  string // who issued it
	subject string // the token's subject
	kind    opKind
	via     string // "proxy", or the instance called directly
	served  []string
	start   time.Time
	end     time.Time
	outcome outcome
	errText string
	// status is a non-200 HTTP status answered by a gateway itself (not
	// by the proxy); the check treats any such answer as a problem.
	status int

	content string // create: the content sent (unique per attempt)
	id      string // create: the id answered; delete: the id to delete
	got     *todo  // create: the todo answered; delete: the details
	todos   []todo // list: everything listed
	// complete says the list covers everything it should (every page was
	// read).
	complete bool
}

func (o *op) String() string {
	s := fmt.Sprintf("%s %s by %s/%s via %s %v [%s → %s] %s",
		o.kind, o.content+o.id, o.client, o.subject, o.via, o.served,
		o.start.Format("15:04:05.000"), o.end.Format("15:04:05.000"), o.outcome)
	if o.errText != "" {
		s += ": " + o.errText
	}
	return s
}

// history is every operation of the run, in the order they ended.
type history struct {
	mu  sync.Mutex
	ops []*op
}

func (h *history) add(o *op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, o)
}

func (h *history) all() []*op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*op(nil), h.ops...)
}

// mcpClient calls the tenant's tools with stateless JSON-RPC POSTs.
type mcpClient struct {
	http *http.Client
	// host is the Host header (the proxy's host:port, which the resource
	// URL names) also when an instance is called directly.
	host string
	path string // the tenant's path, "/acme"
}

// callResult is one tools/call answer.
type callResult struct {
	served     string
	proxyErr   string // the proxy could not get an answer from an instance
	status     int    // HTTP status
	isError    bool   // a tool error result
	text       string // the first text content
	structured json.RawMessage
}

var errHTTP = errors.New("no answer")

// call POSTs tools/call to addr (host:port of the proxy or of an instance).
func (c *mcpClient) call(ctx context.Context, addr, token, tool string, args map[string]any) (callResult, error) {
	var res callResult
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	if err != nil {
		return res, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+c.path, bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	req.Host = c.host
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return res, fmt.Errorf("%w: %v", errHTTP, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	res.served, res.proxyErr, res.status = resp.Header.Get("X-Served-By"), resp.Header.Get("X-Proxy-Error"), resp.StatusCode
	if err != nil {
		return res, fmt.Errorf("%w: reading the answer: %v", errHTTP, err)
	}
	if res.proxyErr != "" {
		return res, fmt.Errorf("proxy: %s", res.proxyErr)
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, raw)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// The last data line carries the JSON-RPC answer.
		var data []byte
		for _, line := range bytes.Split(raw, []byte("\n")) {
			if d, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:")); ok {
				data = bytes.TrimSpace(d)
			}
		}
		raw = data
	}
	var rpc struct {
		Result *struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent json.RawMessage `json:"structuredContent"`
			IsError           bool            `json:"isError"`
		} `json:"result"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &rpc); err != nil {
		return res, fmt.Errorf("answer is not JSON-RPC: %v: %.300s", err, raw)
	}
	switch {
	case rpc.Error != nil:
		return res, fmt.Errorf("JSON-RPC error %d: %s", rpc.Error.Code, rpc.Error.Message)
	case rpc.Result == nil:
		return res, fmt.Errorf("JSON-RPC answer without result: %.300s", raw)
	}
	res.isError, res.structured = rpc.Result.IsError, rpc.Result.StructuredContent
	if len(rpc.Result.Content) > 0 {
		res.text = rpc.Result.Content[0].Text
	}
	return res, nil
}

// finish fills the op's common fields from a call's answer and error, and
// returns whether the call gave a usable result (no error, no tool error).
func (o *op) finish(res callResult, err error) bool {
	if res.served != "" {
		o.served = append(o.served, res.served)
	}
	if err != nil {
		o.outcome, o.errText = failed, err.Error()
		if res.proxyErr == "" && res.status != 0 && res.status != http.StatusOK {
			o.status = res.status
		}
		return false
	}
	if res.isError {
		o.outcome, o.errText = failed, "tool error: "+res.text
		return false
	}
	return true
}

// create calls create-todo.
func (c *mcpClient) create(ctx context.Context, o *op, addr, token string) {
	o.kind, o.start = opCreate, time.Now()
	res, err := c.call(ctx, addr, token, "create-todo", map[string]any{"content": o.content})
	o.end = time.Now()
	if !o.finish(res, err) {
		return
	}
	var t todo
	if err := json.Unmarshal(res.structured, &t); err != nil || t.ID == "" {
		o.outcome, o.errText = failed, fmt.Sprintf("create answered %s / %s", res.structured, res.text)
		return
	}
	o.outcome, o.id, o.got = ok, t.ID, &t
}

// deleteTodo calls delete-todo.
func (c *mcpClient) deleteTodo(ctx context.Context, o *op, addr, token string) {
	o.kind, o.start = opDelete, time.Now()
	res, err := c.call(ctx, addr, token, "delete-todo", map[string]any{"id": o.id})
	o.end = time.Now()
	if err == nil && res.isError && strings.Contains(res.text, "Failed to delete todo") {
		if res.served != "" {
			o.served = append(o.served, res.served)
		}
		o.outcome, o.errText = refused, res.text
		return
	}
	if !o.finish(res, err) {
		return
	}
	var d struct {
		Message string `json:"message"`
		Details todo   `json:"details"`
	}
	if err := json.Unmarshal(res.structured, &d); err != nil || d.Details.ID != o.id {
		o.outcome, o.errText = failed, fmt.Sprintf("delete answered %s / %s", res.structured, res.text)
		return
	}
	o.outcome, o.got = ok, &d.Details
}

// list calls get-todos page after page (at most maxPages) and keeps
// everything listed.
func (c *mcpClient) list(ctx context.Context, o *op, addr, token string, limit, maxPages int) {
	o.start = time.Now()
	defer func() { o.end = time.Now() }()
	cursor := ""
	for range maxPages {
		args := map[string]any{"limit": limit}
		if cursor != "" {
			args["cursor"] = cursor
		}
		res, err := c.call(ctx, addr, token, "get-todos", args)
		if !o.finish(res, err) {
			return
		}
		var page struct {
			Todos      []todo `json:"todos"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(res.structured, &page); err != nil {
			o.outcome, o.errText = failed, fmt.Sprintf("get-todos answered %s / %s", res.structured, res.text)
			return
		}
		o.todos = append(o.todos, page.Todos...)
		if cursor = page.NextCursor; cursor == "" {
			o.outcome, o.complete = ok, true
			return
		}
	}
	o.outcome = ok // a partial list: its todos are checked, its gaps are not
}

// tokens are a subject's two tokens: admin has every scope (lists the
// whole tenant), user has only create:todos (lists and deletes only its
// own).
type tokens struct{ admin, user string }

// worker is one client of the load: it creates, deletes its own todos and
// lists, through the proxy, until ctx ends or it has done maxOps.
type worker struct {
	name, subject string
	tok           tokens
	c             *mcpClient
	addr          string // the proxy
	h             *history
	rng           *rand.Rand
	pause         time.Duration
	maxOps        int

	seq   int
	live  []string // ids of its acknowledged creates it has not deleted
	retry []string // ids whose delete failed: deleted again once
}

func (w *worker) run(ctx context.Context) {
	for range w.maxOps {
		if ctx.Err() != nil {
			return
		}
		w.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.pause):
		}
	}
}

func (w *worker) step(ctx context.Context) {
	// The operation runs on its own context: ending the load must not turn
	// a request in flight into a client-side error.
	opCtx := context.WithoutCancel(ctx)
	o := &op{client: w.name, subject: w.subject, via: "proxy"}
	defer w.h.add(o)
	r := w.rng.Float64()
	switch {
	case len(w.retry) > 0 && r < 0.2:
		o.id, w.retry = w.retry[0], w.retry[1:]
		w.deleteOne(opCtx, o, false)
	case len(w.live) >= 30 || (len(w.live) > 0 && r < 0.35):
		i := w.rng.IntN(len(w.live))
		o.id = w.live[i]
		w.live = append(w.live[:i], w.live[i+1:]...)
		w.deleteOne(opCtx, o, true)
	case r < 0.75:
		w.seq++
		o.content = fmt.Sprintf("%s-%d", w.name, w.seq)
		w.c.create(opCtx, o, w.addr, w.tok.admin)
		if o.outcome == ok {
			w.live = append(w.live, o.id)
		}
	case r < 0.88:
		o.kind = opList
		w.c.list(opCtx, o, w.addr, w.tok.admin, 1000, 1)
	default:
		o.kind = opListOwn
		w.c.list(opCtx, o, w.addr, w.tok.user, 10, 100)
	}
}

// deleteOne deletes o.id as its owner, with the user token half the time
// (the owner rule) and the admin token otherwise; a delete that failed is
// tried once more later.
func (w *worker) deleteOne(ctx context.Context, o *op, first bool) {
	tok := w.tok.admin
	if w.rng.IntN(2) == 0 {
		tok = w.tok.user
	}
	w.c.deleteTodo(ctx, o, w.addr, tok)
	if o.outcome == failed && first {
		w.retry = append(w.retry, o.id)
	}
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
}

// load is the clients' work of a test: goroutines that run until stop,
// which waits for them (and does nothing the second time).
type load struct {
	sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func newLoad() *load {
	l := &load{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

func (l *load) stop() {
	l.once.Do(func() {
		l.cancel()
		l.Wait()
	})
}
