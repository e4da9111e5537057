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

.PHONY: all run test ensure-redis fmt-check vet unit platform fuzz bench verify

all: test

run:
	$(GO) run ./cmd/candado

test: ensure-redis fmt-check vet unit platform

ensure-redis:
	bash scripts/ensure-redis.sh

fmt-check:
	@out="$$($(GOFMT) -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l lists files (run gofmt -w):"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet -tags $(TAGS),platform ./...

unit:
	$(GO) test -race -tags $(TAGS) -count=1 ./...

# Rebuilds the function the way OpenFaaS (golang-middleware) and Knative
# Functions (func-go) build it, with the module cache only (no network):
# see platform_test.go and shared PLATFORMS.md.
platform:
	$(GO) test -tags platform -run '^TestPlatform' -count=1 -v .

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
