package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestScale is part of `make bench`: the gateway binary (TODO_GATEWAY_BIN)
// with 10,000 tenants on one issuer, measured from outside. It prints the
// time from exec to the first answer, the resident memory once it serves,
// and, with one token per tenant sent at once, how many discovery and JWKS
// fetches the issuer saw and how long until every tenant had answered.
// Figures only: nothing here is a pass/fail threshold except that every
// request succeeds.
func TestScale(t *testing.T) {
	bin := os.Getenv("TODO_GATEWAY_BIN")
	if os.Getenv("TODO_GATEWAY_SCALE") == "" || bin == "" {
		t.Skip("set TODO_GATEWAY_SCALE=1 and TODO_GATEWAY_BIN (make bench) to run the scale figures")
	}
	const tenants = 10_000
	// ES256: minting 10,000 tokens takes a second, not the minute RS256 would.
	iss := providertest.New(t, providertest.WithKeys(jose.ES256))
	addr, admin := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	var doc bytes.Buffer
	fmt.Fprintf(&doc, `{"listen": %q, "admin": {"listen": %q}, "store": {"bbolt": {"path": %q}}, "tenants": [`,
		addr, admin, filepath.Join(t.TempDir(), "todos.db"))
	for i := range tenants {
		if i > 0 {
			doc.WriteString(",\n")
		}
		fmt.Fprintf(&doc, `{"id": "t%d", "resource": "%s/t%d", "provider": {"type": "oidc", "issuer": %q}, "audience": {"strategy": "resource"}}`,
			i, base, i, iss.Issuer())
	}
	doc.WriteString("]}")
	config := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(config, doc.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	cmd := exec.Command(bin, "serve", "--config", config)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // by PID
		cmd.Wait()
	})
	last := fmt.Sprintf("%s/.well-known/oauth-protected-resource/t%d", base, tenants-1)
	for {
		resp, err := http.Get(last)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("no answer from the last tenant within a minute: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	firstAnswer := time.Since(start)
	rssStart := residentMB(t, cmd.Process.Pid)

	tokens := make([]string, tenants)
	for i := range tokens {
		tokens[i] = iss.Mint(iss.Claims("scale", fmt.Sprintf("%s/t%d", base, i), userScopes))
	}
	iss.ResetHits()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}, Timeout: 30 * time.Second}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	warm := time.Now()
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= tenants {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/t%d", base, i), strings.NewReader(toolsList))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	allAnswered := time.Since(warm)
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d first requests failed", n, tenants)
	}
	fmt.Printf("\n%d tenants on one issuer, the gateway binary in its own process:\n", tenants)
	fmt.Printf("  exec to the last tenant's first answer  %v\n", firstAnswer.Round(time.Millisecond))
	fmt.Printf("  resident memory then                    %.0f MB\n", rssStart)
	fmt.Printf("  one token per tenant, 64 at a time      all %d answered in %v\n", tenants, allAnswered.Round(time.Millisecond))
	fmt.Printf("  fetches the issuer saw meanwhile        %d discovery, %d JWKS\n", iss.MetadataHits(), iss.Hits(providertest.JWKS))
	fmt.Printf("  resident memory after                   %.0f MB\n", residentMB(t, cmd.Process.Pid))
}

// residentMB reads a process's resident set size from /proc.
func residentMB(t *testing.T, pid int) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("resident memory unknown: %v", err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
