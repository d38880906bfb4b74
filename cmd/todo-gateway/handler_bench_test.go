package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// BenchmarkHandler measures the server side of one request, without the
// network or a client: a bare echo handler answering the same body (the
// baseline), mcp-go alone answering the same result (mcpAlone), then
// get-todos and create-todo through the whole gateway.
func BenchmarkHandler(b *testing.B) {
	iss := providertest.New(b)
	gb := startBed(b, bedSpec{tenants: onIssuers(1, iss.Issuer()), log: io.Discard})
	resource := gb.resources["t0"]
	reader := iss.Mint(iss.Claims("bench-reader", resource, userScopes))
	h := gb.gw.server.Handler
	serve := func(h http.Handler, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, resource, strings.NewReader(body))
		req.Host = strings.TrimPrefix(gb.base, "http://")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+reader)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 10 {
		if rec := serve(h, createBody(i)); rec.Code != http.StatusOK {
			b.Fatalf("create: %d %s", rec.Code, rec.Body)
		}
	}
	listBody := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`
	sample := serve(h, listBody).Body.Bytes()

	e := echo.New()
	e.POST("/*", func(c echo.Context) error {
		io.Copy(io.Discard, c.Request().Body)
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sample)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
		body func(int) string
	}{
		{"bare-echo", e, func(int) string { return listBody }},
		{"mcp-go-alone", mcpAlone(b, sample), func(int) string { return listBody }},
		{"get-todos", h, func(int) string { return listBody }},
		{"create-todo", h, createBody},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if rec := serve(tc.h, tc.body(i)); rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				i++
			}
		})
	}
}
