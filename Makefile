# The README's test command is `make test`; .ci/run calls it.
GO ?= go
PKGS := ./...

.PHONY: test vet fmt-check unit bench build run

test: fmt-check vet unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

build:
	$(GO) build -o bin/todo-gateway ./cmd/todo-gateway

run:
	$(GO) run ./cmd/todo-gateway serve

# Go micro-benchmarks (store, registry, verification, start-up), then the
# HTTP load test with its ratios against a bare handler.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./store/... ./tenants/... ./providers/... ./cmd/...
	TODO_GATEWAY_LOAD=1 $(GO) test -count=1 -run '^TestLoad$$' -v ./cmd/todo-gateway
