# Candado's build and test entry points. `make test` is the one command that
# runs the whole suite on a fresh machine (CI runs it through .ci/run).

export GOTOOLCHAIN := local

GO       ?= go
GOFMT    ?= $(shell $(GO) env GOROOT)/bin/gofmt
# Tests that need a real redis-server (function/redistest) carry this tag, so
# that the OpenFaaS image build, which runs `go test ./...` in function/
# without redis-server, leaves them out.
TAGS     ?= integration
FUZZTIME ?= 5s
BENCHFLAGS ?=

.PHONY: all run test ensure-redis ensure-chromium fmt-check vet unit platform contract bench-smoke e2e fuzz bench verify

all: test

# cmd/candado is a module of its own (cmd/candado/go.mod): go run -C.
run:
	$(GO) run -C cmd/candado .

test: ensure-redis fmt-check vet unit platform contract bench-smoke e2e

ensure-redis:
	bash scripts/ensure-redis.sh

ensure-chromium:
	bash scripts/ensure-chromium.sh

fmt-check:
	@out="$$($(GOFMT) -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l lists files (run gofmt -w):"; echo "$$out"; exit 1; fi

# Modules of their own, which ./... at the root does not reach: the Go client
# (client/, standard library only), the server and CLI with the client's
# integration tests (cmd/candado/, which requires the root module and the
# client through replaces, so that the root requires neither), and the
# manifest tests (deploy/, which need k8s.io/api: their golang.org/x
# requirements would otherwise sit in the root go.mod below what Knative
# Functions' runtime selects). contract/ has a target of its own.
MODULES  := client cmd/candado deploy

vet:
	$(GO) vet -tags $(TAGS),platform ./...
	@set -e; for m in $(MODULES); do echo "== vet $$m"; $(GO) -C $$m vet -tags $(TAGS) ./...; done

unit:
	$(GO) test -race -tags $(TAGS) -count=1 ./...
	@set -e; for m in $(MODULES); do echo "== test $$m"; $(GO) -C $$m test -race -tags $(TAGS) -count=1 ./...; done

# Rebuilds the function the way OpenFaaS (golang-middleware) and Knative
# Functions (func, with the real knative.dev/func-go runtime) build it, and
# runs each build in its platform's environment: see platform_test.go. The
# builds fetch what the module cache lacks through the module proxy, as the
# platforms' builds do, so this also passes with an empty cache.
platform:
	$(GO) test -tags platform -run '^TestPlatform' -count=1 -timeout 20m -v .

# The running service against docs/openapi.yaml, in a module of its own
# (contract/go.mod: its validator needs a newer Go than the root's 1.24).
# Without -race: the service it runs is the root module's, whose own tests
# run with the race detector, and building the validator with -race alone
# took minutes of CI's budget.
contract: ensure-redis
	cd contract && $(GO) vet -tags $(TAGS) ./... && $(GO) test -tags $(TAGS) -count=1 ./...

# The benchmark's drivers for a few hundred milliseconds each (bench/, a
# module of its own: the etcd client), so the tool cannot rot: each must make
# cycles, and a lock that grants twice must be caught.
bench-smoke: ensure-redis
	$(GO) -C bench vet -tags $(TAGS) ./... && $(GO) -C bench test -tags $(TAGS) -count=1 ./...

# The operations page (/ui) in Debian's chromium, driven by chromedp, in a
# module of its own (e2e/go.mod). The screenshot is kept under the test's
# artifact dir; CANDADO_UPDATE_SCREENSHOT=1 also rewrites docs/ui.png.
e2e: ensure-redis ensure-chromium
	mkdir -p e2e/out && cd e2e && $(GO) vet -tags $(TAGS) ./... && $(GO) test -tags $(TAGS) -count=1 -artifacts -outputdir $(CURDIR)/e2e/out -v ./...

# Runs every Fuzz target of every package for FUZZTIME each.
fuzz:
	@set -e; \
	for pkg in $$($(GO) list -tags $(TAGS) ./...); do \
		for f in $$($(GO) test -tags $(TAGS) -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -tags $(TAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench: ensure-redis
	$(GO) -C bench run ./cmd/bench $(BENCHFLAGS)

# The long safety runs: every history-checker scenario (faults included) with
# 10,000 checked operations, the deliberately broken locks that must be caught,
# a 2-minute soak, and a longer fuzz run. Minutes, not CI's budget.
verify: ensure-redis
	$(GO) run ./cmd/candado-verify all -ops 10000
	$(GO) run ./cmd/candado-verify soak -duration 2m
	$(MAKE) fuzz FUZZTIME=30s
