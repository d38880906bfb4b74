# The README's test command is `make test`; .ci/run calls it. It runs the Go
# checks and tests, then the end-to-end scenarios against real peers.
GO ?= go
# The module builds on Go 1.26 and newer; the project builds, tests and
# measures with Go 1.27, whose encoding/json runs on encoding/json/v2 (a third
# of mcp-go's time per call on 1.26; docs/testing.md, Benchmarks). A machine with
# another Go fetches this one through the module proxy (about 10 s, once).
export GOTOOLCHAIN ?= go1.27.3
PKGS := ./...

.PHONY: test vet fmt-check unit bench build run e2e e2e-deps inspector-test demo cluster-test etcd-new cluster service-check

test: fmt-check vet unit service-check e2e inspector-test cluster-test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# -buildvcs=auto: the VCS revision that `todo-gateway version` prints, even
# where GOFLAGS turns stamping off.
build:
	$(GO) build -buildvcs=auto -o bin/todo-gateway ./cmd/todo-gateway

run:
	$(GO) run ./cmd/todo-gateway serve

# Go micro-benchmarks (store on bbolt and on etcd with 1 and 3 embedded
# members, registry, verification, start-up), then the in-process HTTP load
# test (a quick check; with etcd installed it also runs a gateway on the etcd
# driver in the same rounds), then the measurement docs/testing.md quotes
# (bench/wrk_test.go): the gateway binary under wrk, interleaved with a bare
# net/http handler and a bare mcp-go server, each a process of its own, and
# an upstream tenant against the bare mcp-go server it fronts, and, with etcd
# on the PATH (Debian: apt-get install -y etcd-server), the gateway on three
# etcd members with and without its read cache against bbolt (ETCD_BIN
# names another etcd server: make etcd-new; make bench
# ETCD_BIN=$(CURDIR)/bin/etcd-3.7/etcd); what one revision check of the
# read cache costs three members alone (bench/checkcost_test.go); the
# memory and CPU per open SSE stream through an upstream tenant
# (bench/streams_test.go, 1,000 streams); and the scale figures
# (cmd/todo-gateway/scale_test.go): the binary with 10,000 tenants on one
# issuer.
# Installs wrk when missing (Debian: apt-get, as root or through sudo).
BENCH_BIN := $(CURDIR)/bin/bench/todo-gateway

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./store/... ./tenants/... ./providers/... ./cmd/...
	TODO_GATEWAY_LOAD=1 ETCD_BIN=$${ETCD_BIN:-$$(command -v etcd)} $(GO) test -count=1 -run '^TestLoad$$' -v ./cmd/todo-gateway
	@command -v wrk >/dev/null 2>&1 || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get install -y wrk || { $$sudo apt-get update && $$sudo apt-get install -y wrk; }; }
	$(GO) build -o $(BENCH_BIN) ./cmd/todo-gateway
	TODO_GATEWAY_WRK=1 TODO_GATEWAY_BIN=$(BENCH_BIN) ETCD_BIN=$${ETCD_BIN:-$$(command -v etcd)} $(GO) test -count=1 -timeout 20m -run '^TestWrk$$' -v ./bench
	TODO_GATEWAY_ETCD_COST=1 ETCD_BIN=$${ETCD_BIN:-$$(command -v etcd)} $(GO) test -count=1 -timeout 5m -run '^TestEtcdCheckCost$$' -v ./bench
	TODO_GATEWAY_STREAMS=1 TODO_GATEWAY_BIN=$(BENCH_BIN) $(GO) test -count=1 -timeout 5m -run '^TestStreams$$' -v ./bench
	@command -v python3 >/dev/null 2>&1 || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get install -y python3 || { $$sudo apt-get update && $$sudo apt-get install -y python3; }; }
	TODO_GATEWAY_REFUSALS=1 TODO_GATEWAY_BIN=$(BENCH_BIN) $(GO) test -count=1 -timeout 5m -run '^TestEarlyRefusals$$' -v ./bench
	TODO_GATEWAY_FLOODS=1 TODO_GATEWAY_FLOODS_PER_SOURCE=3750 TODO_GATEWAY_BIN=$(BENCH_BIN) $(GO) test -count=1 -timeout 10m -run '^TestFloods$$' -v ./bench
	TODO_GATEWAY_SCALE=1 TODO_GATEWAY_BIN=$(BENCH_BIN) $(GO) test -count=1 -timeout 10m -run '^TestScale$$' -v ./cmd/todo-gateway

# The systemd unit (deploy/todo-gateway.service): systemd-analyze verify with
# ExecStart pointed at a binary built here (the only line changed; verify
# checks that the command exists), failing on any warning, then the offline
# security review, failing above an exposure of 2.0 ("OK"). Installs systemd
# with apt-get when systemd-analyze is missing on a Debian machine.
SERVICE_BIN := $(CURDIR)/bin/service/todo-gateway

service-check:
	@if ! command -v systemd-analyze >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get install -y systemd || { $$sudo apt-get update && $$sudo apt-get install -y systemd; } || true; \
	fi
	$(GO) build -o $(SERVICE_BIN) ./cmd/todo-gateway
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	sed 's#^ExecStart=/usr/local/bin/todo-gateway #ExecStart=$(SERVICE_BIN) #' deploy/todo-gateway.service > "$$dir/todo-gateway.service" && \
	grep -q '^ExecStart=$(SERVICE_BIN) ' "$$dir/todo-gateway.service" && \
	out=$$(systemd-analyze verify "$$dir/todo-gateway.service" 2>&1) && [ -z "$$out" ] || { echo "service-check: systemd-analyze verify:"; echo "$$out"; exit 1; } && \
	{ sec=$$(systemd-analyze security --offline=yes --threshold=20 --no-pager "$$dir/todo-gateway.service" 2>&1); rc=$$?; \
	  echo "$$sec" | tail -1; [ $$rc = 0 ] || { echo "service-check: exposure above 2.0"; exit 1; }; }
	@echo "service-check: deploy/todo-gateway.service verified"

# End-to-end tests against real peers (node-oidc-provider as the
# authorization server, the MCP TypeScript SDK as the client): builds the
# gateway once, then runs every scenario in e2e/test with node's test runner.
# Needs node 20+ and e2e/node_modules (npm ci, run here if missing).
E2E_BIN := $(CURDIR)/bin/e2e/todo-gateway
NODE ?= node

# npm ci when e2e/node_modules is missing or older than the lock file (a
# dependency added since the last install).
e2e-deps:
	@if [ ! -f e2e/node_modules/.package-lock.json ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then \
		cd e2e && npm ci --no-audit --no-fund; fi

# make e2e runs the scenarios plain, then again with E2E_CHAIN=1: every todo
# scenario through two gateways (each todo tenant an upstream tenant in front
# of an inner gateway, e2e/lib/chain.mjs; the upstream-* scenarios skip),
# about 20 s more.
e2e: e2e-deps
	$(GO) build -o $(E2E_BIN) ./cmd/todo-gateway
	cd e2e && E2E_CHAIN=0 TODO_GATEWAY_BIN=$(E2E_BIN) $(NODE) --test --test-timeout=120000 test/
	cd e2e && E2E_CHAIN=1 TODO_GATEWAY_BIN=$(E2E_BIN) $(NODE) --test --test-timeout=120000 test/

# The browser tests (e2e/browser): providers --format html rendered at
# 1280 px for 3 and 12 tenants (screenshots in bin/e2e/artifacts), and
# MCP Inspector 2.x
# (pinned in e2e/package-lock.json) driven through its web UI in headless
# Chromium with playwright-core against make demo's provider and gateway,
# as admin, user and guest, then on an upstream tenant in front of
# server-everything (tools per user, a tool run in the UI); about 50 s.
# Uses Debian's chromium (CHROMIUM_BIN for another), installed with apt-get
# when missing on a Debian machine; without it the target fails rather than
# skip.
CHROMIUM_BIN ?= chromium

inspector-test: e2e-deps
	@if ! command -v $(CHROMIUM_BIN) >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get install -y chromium || { $$sudo apt-get update && $$sudo apt-get install -y chromium; } || true; \
	fi
	@command -v $(CHROMIUM_BIN) >/dev/null 2>&1 || { echo "inspector-test: no $(CHROMIUM_BIN) on the PATH; install it (Debian: apt-get install -y chromium) or set CHROMIUM_BIN" >&2; exit 1; }
	$(GO) build -o $(E2E_BIN) ./cmd/todo-gateway
	cd e2e && TODO_GATEWAY_BIN=$(E2E_BIN) CHROMIUM_BIN=$(CHROMIUM_BIN) $(NODE) --test --test-timeout=300000 browser/

# The cluster tests (e2e/cluster), against two etcd servers: Debian's
# (3.4; etcd on the PATH) and etcd 3.7 built here from the Go module proxy
# (target etcd-new). TestCluster: 3 etcd members and 3 gateway processes
# behind a round-robin proxy, clients creating, listing and deleting while
# the etcd leader is SIGKILLed, a gateway SIGKILLed and restarted, another
# SIGTERMed (drain); then the history is checked. TestClusterTenantPush:
# three gateways with tenants_from "etcd" while a tenant is pushed, added and
# removed under load. TestClusterNemesis: every etcd peer and client
# connection through blackhole proxies while the etcd leader is partitioned
# away, a gateway is cut off from etcd, the leader and a gateway are
# SIGSTOPped, the leader is SIGKILLed and a member replaced; the history is
# checked with porcupine. Both servers run even when the first fails; the
# target fails if either did. About 80 s per server, 160 s in all. Debian's etcd
# is installed with apt-get (as root or through sudo) when missing on a
# Debian machine; without it the target fails rather than skip, so that CI
# cannot pass without running it.
# CLUSTER_TEST_DIR=dir keeps every process's log and data there (and each
# nemesis run's history and porcupine's visualization of it); without it, a
# failing nemesis run keeps its history under bin/cluster/artifacts.
CLUSTER_BIN := $(CURDIR)/bin/cluster/todo-gateway
CLUSTER_TESTS := ^TestCluster(TenantPush|Nemesis)?$$
CLUSTER_TEST_FLAGS = -count=1 -timeout 8m -v -artifacts -outputdir $(CURDIR)/bin/cluster/artifacts

# The newer etcd server the cluster tests also run against, built from its
# own module (e2e/cluster/etcdserver/go.mod names the version).
ETCD_NEW := $(CURDIR)/bin/etcd-3.7/etcd

etcd-new:
	cd e2e/cluster/etcdserver && $(GO) build -o $(ETCD_NEW) go.etcd.io/etcd/server/v3
	@$(ETCD_NEW) --version | head -1

cluster-test: etcd-new
	@if ! command -v etcd >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get install -y etcd-server || { $$sudo apt-get update && $$sudo apt-get install -y etcd-server; } || true; \
	fi
	@command -v etcd >/dev/null 2>&1 || { echo "cluster-test: no etcd on the PATH; install it (Debian: apt-get install -y etcd-server) or run the other targets" >&2; exit 1; }
	$(GO) build -o $(CLUSTER_BIN) ./cmd/todo-gateway
	@mkdir -p $(CURDIR)/bin/cluster/artifacts
	@failed=""; \
	for etcd in "$$(command -v etcd)" "$(ETCD_NEW)"; do \
		echo "cluster-test: against $$("$$etcd" --version | head -1) ($$etcd)"; \
		echo "TODO_GATEWAY_BIN=$(CLUSTER_BIN) ETCD_BIN=$$etcd $(GO) test $(CLUSTER_TEST_FLAGS) -run '$(CLUSTER_TESTS)' ./e2e/cluster"; \
		TODO_GATEWAY_BIN=$(CLUSTER_BIN) ETCD_BIN="$$etcd" $(GO) test $(CLUSTER_TEST_FLAGS) -run '$(CLUSTER_TESTS)' ./e2e/cluster || failed="$$failed $$etcd"; \
	done; \
	if [ -n "$$failed" ]; then echo "cluster-test: failed against:$$failed" >&2; exit 1; fi

# The gateway with two tenants and a Logto-like provider on 127.0.0.1;
# prints users, resource URLs and how to connect; Ctrl-C stops it.
# DEMO_UPSTREAM=1 adds a third tenant in front of server-everything.
demo: e2e-deps
	$(GO) build -o $(E2E_BIN) ./cmd/todo-gateway
	TODO_GATEWAY_BIN=$(E2E_BIN) $(NODE) e2e/demo.mjs

# The demo as a cluster (e2e/cluster.mjs): 3 etcd members, 3 gateways on
# them, a round-robin proxy (node, following each gateway's /readyz) in front
# of the gateways on 127.0.0.1:3001, and the provider; prints what to connect
# to and every PID and admin URL; Ctrl-C stops everything. Needs etcd 3.4+:
# ETCD_BIN, or etcd on the PATH (Debian: apt-get install etcd-server).
cluster: e2e-deps
	@command -v "$${ETCD_BIN:-etcd}" >/dev/null 2>&1 || { echo "cluster: cannot find etcd ($${ETCD_BIN:-etcd}); install it (Debian: apt-get install -y etcd-server) or set ETCD_BIN to its path" >&2; exit 1; }
	$(GO) build -o $(E2E_BIN) ./cmd/todo-gateway
	TODO_GATEWAY_BIN=$(E2E_BIN) ETCD_BIN="$$(command -v "$${ETCD_BIN:-etcd}")" $(NODE) e2e/cluster.mjs
