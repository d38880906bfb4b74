package todo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"

	"github.com/go-json-experiment/json"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

// deleteFailed is the tutorial's answer to any refused delete: it does not
// reveal whether the id exists.
const deleteFailed = "Failed to delete todo"

// todoList is get-todos' structured result. An object, because MCP requires
// structuredContent to be one.
type todoList struct {
	Todos      []store.Todo `json:"todos"`
	NextCursor string       `json:"nextCursor,omitempty"`
}

// deleteResult is delete-todo's structured result.
type deleteResult struct {
	Message string     `json:"message"`
	Details store.Todo `json:"details"`
}

// Tool names, exactly as the tutorial's todo manager.
const (
	ToolCreateTodo = "create-todo"
	ToolGetTodos   = "get-todos"
	ToolDeleteTodo = "delete-todo"
)

// Tool is one tool every todo tenant serves, described once: registration
// with mcp-go, the fast path, the step-up check at the HTTP layer
// (Requires), the policy and the explanation "todo-gateway token" gives all
// read this table, so a new tool is one row.
type Tool struct {
	Name string
	// Requires is the permission a caller must hold before the tool runs at
	// all, answered at the HTTP layer with a 403 step-up naming its scope;
	// "" for a tool open to any authenticated caller, which narrows what it
	// does by ownership instead.
	Requires providers.Permission
	// Explain says what a caller past Requires may do with the tool: one
	// word of access and a sentence; scope names a permission's scope string.
	Explain func(p *providers.Principal, scope func(providers.Permission) string) (access, detail string)

	definition mcpgo.Tool
	handle     func(tt *todoTools, ctx context.Context, req mcpgo.CallToolRequest, p *providers.Principal) (*mcpgo.CallToolResult, error)
}

// Table is a table of tools: Tools is the todo server's.
type Table []Tool

// Tools is every tool, in the order clients list them.
var Tools = Table{
	{
		Name:     ToolCreateTodo,
		Requires: providers.PermCreate,
		Explain: func(p *providers.Principal, _ func(providers.Permission) string) (string, string) {
			return "allowed", fmt.Sprintf("creates todos owned by %q", p.Subject)
		},
		definition: mcpgo.NewTool(ToolCreateTodo,
			mcpgo.WithDescription("Create a new todo owned by the caller. Requires the create permission."),
			mcpgo.WithString("content", mcpgo.Required(), mcpgo.MinLength(1), mcpgo.MaxLength(store.MaxContentBytes),
				mcpgo.Description("The text of the todo")),
			mcpgo.WithOutputSchema[store.Todo](),
			mcpgo.WithReadOnlyHintAnnotation(false),
			mcpgo.WithDestructiveHintAnnotation(false),
			mcpgo.WithIdempotentHintAnnotation(false),
			mcpgo.WithOpenWorldHintAnnotation(false),
		),
		handle: (*todoTools).create,
	},
	{
		Name: ToolGetTodos,
		Explain: func(p *providers.Principal, scope func(providers.Permission) string) (string, string) {
			if CanListAll(p) {
				return "all", "every todo of the tenant (" + scope(providers.PermRead) + ")"
			}
			return "own", fmt.Sprintf("only the todos of %q (no %s)", p.Subject, scope(providers.PermRead))
		},
		definition: mcpgo.NewTool(ToolGetTodos,
			mcpgo.WithDescription("List todos: every todo of the tenant with the read permission, otherwise only the caller's own. Oldest first."),
			mcpgo.WithInteger("limit", mcpgo.Min(1), mcpgo.Max(store.MaxLimit),
				mcpgo.Description(fmt.Sprintf("Page size, default %d", store.DefaultLimit))),
			mcpgo.WithString("cursor", mcpgo.Description("nextCursor of the previous page")),
			mcpgo.WithOutputSchema[todoList](),
			arrayProperty("todos"),
			mcpgo.WithReadOnlyHintAnnotation(true),
			mcpgo.WithDestructiveHintAnnotation(false),
			mcpgo.WithIdempotentHintAnnotation(true),
			mcpgo.WithOpenWorldHintAnnotation(false),
		),
		handle: (*todoTools).list,
	},
	{
		Name: ToolDeleteTodo,
		Explain: func(p *providers.Principal, scope func(providers.Permission) string) (string, string) {
			// Any owner id other than the subject's is someone else's todo.
			switch {
			case CanDelete(p, store.Todo{OwnerID: "not " + p.Subject}):
				return "any", "any todo of the tenant (" + scope(providers.PermDelete) + ")"
			case CanDelete(p, store.Todo{OwnerID: p.Subject}):
				return "own", fmt.Sprintf("only the todos of %q (no %s)", p.Subject, scope(providers.PermDelete))
			}
			return "none", "no todo"
		},
		definition: mcpgo.NewTool(ToolDeleteTodo,
			mcpgo.WithDescription("Delete a todo by id: the owner may delete their own, the delete permission allows any."),
			mcpgo.WithString("id", mcpgo.Required(), mcpgo.MinLength(1), mcpgo.Description("The id of the todo")),
			mcpgo.WithOutputSchema[deleteResult](),
			mcpgo.WithReadOnlyHintAnnotation(false),
			mcpgo.WithDestructiveHintAnnotation(true),
			mcpgo.WithIdempotentHintAnnotation(true),
			mcpgo.WithOpenWorldHintAnnotation(false),
		),
		handle: (*todoTools).delete,
	},
}

// arrayProperty declares the output schema's property name a plain array.
// The generated schema allows null for every slice (["null","array"]),
// which strict clients (Inspector) flag; the tools never send null.
func arrayProperty(name string) mcpgo.ToolOption {
	return func(t *mcpgo.Tool) {
		if prop, ok := t.OutputSchema.Properties[name].(map[string]any); ok {
			prop["type"] = "array"
		}
	}
}

// named finds a tool of the table by name.
func (t Table) named(name string) (*Tool, bool) {
	for i := range t {
		if t[i].Name == name {
			return &t[i], true
		}
	}
	return nil, false
}

// Requires is what a call needs before it may reach the todo server: a
// tools/call of a tool whose Requires names a permission needs it; any
// other call, nothing. Every call is exposed: mcp-go answers a method or
// tool it does not know with its own error.
func (t Table) Requires(method, tool string) (perms []providers.Permission, exposed bool) {
	if method == string(mcpgo.MethodToolsCall) {
		if tt, ok := t.named(tool); ok && tt.Requires != "" {
			return []providers.Permission{tt.Requires}, true
		}
	}
	return nil, true
}

// todoTools serves the tools of one tenant (see Options for its fields).
type todoTools struct {
	tenant    string
	scope     func(providers.Permission) string
	roles     *providers.RoleGrants
	notIssued func(scope string) string
	store     store.Store
	log       *slog.Logger
	requestID func(context.Context) string
	toolError func(tool string)
	bound     func(string) string
}

// newToolHandlers returns the handlers of a tenant's tools, in the order of
// Tools. The fast path (fastpath.go) calls them directly and the tenant's
// mcp-go server (newMCPServer) registers the very same functions, as mcp-go
// would call them with that server's options: a hook, tool middleware,
// filter or schema validation added there must be mirrored in the fast path.
func newToolHandlers(tt *todoTools) []server.ToolHandlerFunc {
	handlers := make([]server.ToolHandlerFunc, len(Tools))
	for i := range Tools {
		tool := &Tools[i]
		handlers[i] = tt.authenticated(tool.Name, func(ctx context.Context, req mcpgo.CallToolRequest, p *providers.Principal) (*mcpgo.CallToolResult, error) {
			// The HTTP layer answers a missing permission with a 403,
			// unless the tenant chose tool_error (missing_permission), in
			// which case this is the answer; it also keeps the tool safe
			// if it is ever reached another way.
			if tool.Requires != "" && !p.Has(tool.Requires) {
				return mcpgo.NewToolResultError(MissingPermissionText(tool.Name, tt.scope(tool.Requires), tt.roles, tool.Requires, tt.notIssued(tt.scope(tool.Requires)))), nil
			}
			return tool.handle(tt, ctx, req, p)
		})
	}
	return handlers
}

// newMCPServer builds the mcp-go server of the tenant with this id, with
// every tool served by its handler from newToolHandlers.
func newMCPServer(id string, handlers []server.ToolHandlerFunc) *server.MCPServer {
	s := server.NewMCPServer("todo-gateway/"+id, "1.0.0",
		server.WithToolCapabilities(false),
		// No WithInputSchemaValidation: each handler checks its own
		// arguments (and the store checks content), which costs nothing,
		// while the generic validator was 7% of a get-todos call.
		server.WithRecovery(),
	)
	for i := range Tools {
		s.AddTool(Tools[i].definition, handlers[i])
	}
	return s
}

// authenticated hands the verified caller to a tool. The edge always puts
// one in the context (WithPrincipal); a missing principal means the tool
// was reached some other way, and it is refused rather than run as nobody.
// A panic in the tool is logged with the request id and answered
// generically: mcp-go's own recovery would send the panic's text to the
// client.
func (tt *todoTools) authenticated(name string, h func(context.Context, mcpgo.CallToolRequest, *providers.Principal) (*mcpgo.CallToolResult, error)) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcpgo.CallToolRequest) (res *mcpgo.CallToolResult, err error) {
		defer func() {
			if v := recover(); v != nil {
				res, err = tt.failure(ctx, name, fmt.Errorf("panic: %v", v), ""), nil
			}
			if res != nil && res.IsError {
				// A tool error travels in an HTTP 200: without this counter
				// it would look like a success in the metrics.
				tt.toolError(name)
			}
		}()
		p := PrincipalFrom(ctx)
		if p == nil {
			return mcpgo.NewToolResultError("not authenticated"), nil
		}
		return h(ctx, req, p)
	}
}

func (tt *todoTools) create(ctx context.Context, req mcpgo.CallToolRequest, p *providers.Principal) (*mcpgo.CallToolResult, error) {
	content, err := req.RequireString("content")
	if err != nil {
		return mcpgo.NewToolResultError("the content argument is required and must be a string"), nil
	}
	todo, err := tt.store.Create(ctx, tt.tenant, p.Subject, content)
	if err != nil {
		return tt.failure(ctx, ToolCreateTodo, err, ""), nil
	}
	return structured(todo), nil
}

func (tt *todoTools) list(ctx context.Context, req mcpgo.CallToolRequest, p *providers.Principal) (*mcpgo.CallToolResult, error) {
	opts := store.ListOptions{Limit: store.DefaultLimit}
	args := req.GetArguments()
	if v, ok := args["limit"]; ok {
		n, ok := integer(v)
		if !ok || n < 1 || n > store.MaxLimit {
			return mcpgo.NewToolResultError(fmt.Sprintf("limit must be an integer from 1 to %d", store.MaxLimit)), nil
		}
		opts.Limit = n
	}
	if _, ok := args["cursor"]; ok {
		c, err := req.RequireString("cursor")
		if err != nil {
			return mcpgo.NewToolResultError("cursor must be the nextCursor string of a previous page"), nil
		}
		opts.Cursor = c
	}
	if !CanListAll(p) {
		opts.Owner = p.Subject
	}
	page, err := tt.store.List(ctx, tt.tenant, opts)
	if err != nil {
		return tt.failure(ctx, ToolGetTodos, err, ""), nil
	}
	if page.Todos == nil {
		page.Todos = []store.Todo{}
	}
	return structured(todoList{Todos: page.Todos, NextCursor: page.NextCursor}), nil
}

func (tt *todoTools) delete(ctx context.Context, req mcpgo.CallToolRequest, p *providers.Principal) (*mcpgo.CallToolResult, error) {
	id, err := req.RequireString("id")
	if err != nil {
		return mcpgo.NewToolResultError("the id argument is required and must be a string"), nil
	}
	todo, err := tt.store.Delete(ctx, tt.tenant, id, func(t store.Todo) bool { return CanDelete(p, t) })
	if err != nil {
		// Unknown, malformed and not-yours ids look the same to the caller.
		if storeAnswerFor(err).refusal {
			return errorJSON(deleteFailed), nil
		}
		return tt.failure(ctx, ToolDeleteTodo, err, deleteFailed), nil
	}
	return structured(deleteResult{Message: fmt.Sprintf("Todo %s deleted", todo.ID), Details: todo}), nil
}

// integer reads an integer argument: a JSON number without a fraction, or
// a string of digits. mcp-go's RequireInt would cut 1.5 to 1 and turn
// 1e300 into whatever the conversion gives.
func integer(v any) (int, bool) {
	switch v := v.(type) {
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return 0, false
		}
		return int(v), true
	case int:
		return v, true
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}

// unsureWrites is, for each tool that writes, what a store that could not
// answer leaves uncertain (the failure may have come after the write), said
// with the retry answer. (Not a field of Tool: the handlers in that table
// call failure.)
var unsureWrites = map[string]string{
	ToolCreateTodo: "the todo may or may not have been created",
	ToolDeleteTodo: "the todo may or may not have been deleted",
}

// failure turns a store error into a tool error. Invalid input is the
// caller's to fix and its message is safe; anything else is logged with the
// request id and answered generically, so internals never reach the client,
// except that a store which cannot answer says so and asks for a retry.
func (tt *todoTools) failure(ctx context.Context, tool string, err error, generic string) *mcpgo.CallToolResult {
	answer := storeAnswerFor(err)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The call ended with the request's context: its client went
		// away, whatever the store made of that. Not a failure to log.
		answer = clientGone
	}
	if answer.showText {
		return mcpgo.NewToolResultError(err.Error())
	}
	rid := tt.requestID(ctx)
	if !answer.refusal { // a refusal is the request's doing, not a failure
		tt.log.ErrorContext(ctx, "tool failed", "tenant", tt.tenant, "tool", tool, "request_id", rid, "err", tt.bound(err.Error()))
	}
	if answer.retry != "" {
		detail := "request " + rid
		if unsure := unsureWrites[tool]; unsure != "" {
			detail = unsure + "; " + detail
		}
		return mcpgo.NewToolResultError(answer.retry + " (" + detail + ")")
	}
	if generic != "" {
		return errorJSON(generic)
	}
	return mcpgo.NewToolResultError("internal error (request " + rid + ")")
}

// structured answers with the value as structuredContent and as JSON text,
// for clients that read only the text. The value is marshalled once and the
// bytes serve both: on get-todos this was a tenth of the request's CPU.
// encoding/json/v2 (go-json-experiment, as in store/bolt) leaves <, > and &
// unescaped; mcp-go's encoder escapes them on the wire as before.
func structured(v any) *mcpgo.CallToolResult {
	b, err := json.Marshal(v)
	if err != nil { // only plain data structs reach here
		return mcpgo.NewToolResultError("internal error")
	}
	return &mcpgo.CallToolResult{
		Content:              []mcpgo.Content{mcpgo.NewTextContent(string(b))},
		RawStructuredContent: b,
	}
}

// errorJSON is the tutorial's error shape, {"error": "..."}, as a tool error.
func errorJSON(msg string) *mcpgo.CallToolResult {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return mcpgo.NewToolResultError(string(b))
}
