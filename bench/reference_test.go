package bench

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestRelays: each relay answers the upstream's echo call byte for byte as
// the upstream does, as application/json, so that its wrk row measures the
// same call; a relay whose upstream is gone answers 502.
func TestRelays(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/mcp", Upstream())
	upstream := httptest.NewServer(mux)
	defer upstream.Close()
	target, err := url.Parse(upstream.URL + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	status, direct := post(t, target.String(), "", echoBody)
	if status != http.StatusOK || !strings.Contains(direct, echoText) {
		t.Fatalf("the upstream answers echo with %d %s", status, direct)
	}
	for name, relay := range map[string]func(*url.URL) http.Handler{"net/http": RelayNetHTTP, "fasthttp": RelayFastHTTP} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(relay(target))
			defer srv.Close()
			for range 3 { // a reused connection answers alike
				status, got := post(t, srv.URL, "", echoBody)
				if status != http.StatusOK || got != direct {
					t.Fatalf("through the relay: %d %s, want 200 %s", status, got, direct)
				}
			}
			gone := httptest.NewServer(relay(&url.URL{Scheme: "http", Host: closedAddr(t), Path: "/mcp"}))
			defer gone.Close()
			if status, body := post(t, gone.URL, "", echoBody); status != http.StatusBadGateway {
				t.Errorf("with its upstream gone: %d %s, want 502", status, body)
			}
		})
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}
