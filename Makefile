# gatewayd — see README.md. `make run` and `make test` need only Go and
# either a local PostgreSQL or Docker; `make db` takes care of the rest.
SHELL := /bin/bash
GO ?= go
# DATABASE_URL, when set, is passed on; its default lives in the code
# (internal/config) and `go run ./cmd/ensuredb -url` prints it.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# The OpenAPI linter `make lint` runs through npx; pinned so the rules do not move.
REDOCLY ?= @redocly/cli@2.77.0

.PHONY: help run demo test db stop migrate lint build bench load clean

## help: list the targets
help:
	@sed -nE 's/^## ([a-z]+): (.*)/  \1\t\2/p' $(MAKEFILE_LIST) | expand -t 12

## run: database, migrations, gatewayd, and a demo of three simulated gateways connecting
run: db .env build
	@scripts/demo.sh run

## demo: the same demo, printing the three statuses and stopping
demo: db .env build
	@scripts/demo.sh once

## test: every test, race detector on, against real PostgreSQL
# scripts/test.sh builds the test binaries first (kept in bin/test, linked
# again only when their code changed), then runs TESTJOBS of them at a
# time in the order given. Packages are named longest first, so that they
# start first rather than one of them running alone at the end.
# TESTJOBS: a running test binary mostly waits (sockets, timers,
# PostgreSQL, Chromium, other processes); at 2 the cores idled, 4 kept
# both busy (BENCHMARKS.md, "the suite at -p 4"). Since the hostile-peer
# tests of 2026-12-06 (floods, 4 MiB sensor lists, flapping fleets) 4
# starved the API's timing tests past their 5 s timeouts in CI: 3.
# The race runtime sleeps 1 s at the exit of every test binary so that late
# reports get printed; a race inside a test fails that test anyway, and
# 50 ms is plenty for the rest.
# bin/gatewayd is built once for the tests that run the real program
# (GATEWAYD_TEST_BIN): go build skips the link when it is current.
TESTFIRST := ./web ./api ./cmd/gwload ./cmd/gatewayd ./actors ./ctc/ctctest ./events ./store
TESTJOBS ?= 3
# The tests' server is TEST_DATABASE_URL's, else the environment's
# DATABASE_URL (internal/testdb), never .env's: db.sh --test makes sure of
# that one, as make db does of gatewayd's.
test:
	@scripts/db.sh --test
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/gatewayd ./cmd/gatewayd
	GATEWAYD_TEST_BIN=$(CURDIR)/bin/gatewayd GORACE="atexit_sleep_ms=50 $$GORACE" TESTJOBS=$(TESTJOBS) scripts/test.sh $(TESTFIRST) ./...

## db: make sure PostgreSQL answers at DATABASE_URL and the database exists
db:
	@scripts/db.sh

## stop: stop the database make db started (a private cluster or Docker's); Ctrl-C stops make run
stop:
	@scripts/stop.sh

## migrate: apply migrations and exit
migrate: db .env build
	@. scripts/dotenv.sh; dotenv; ./bin/gatewayd migrate

## lint: gofmt, go vet, and Redocly's recommended rules on api/openapi.json (needs npx)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v npx >/dev/null 2>&1; then \
	  npx --yes $(REDOCLY) lint api/openapi.json; \
	else echo "lint: npx not found, Redocly skipped (api/openapi.json is not linted)"; fi

## build: bin/gatewayd, bin/ctcsim, bin/gwload, bin/demo
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/gatewayd ./cmd/gatewayd
	$(GO) build -o bin/ctcsim ./cmd/ctcsim
	$(GO) build -o bin/gwload ./cmd/gwload
	$(GO) build -o bin/demo ./cmd/demo

## bench: Go benchmarks of the hot paths
bench:
	@scripts/db.sh --test
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./...

## load: the load tool against a fresh gatewayd and simulator (see BENCHMARKS.md)
load: db .env build
	@. scripts/dotenv.sh; dotenv; ./bin/gwload $(LOADFLAGS)

# A fresh ENCRYPTION_KEY on first run. Losing it loses the stored gateway passwords.
# Owner-only (umask 077), as the demo's admin token: the key opens every
# stored password, and the shell's umask left it readable by every user of
# the box (found by an audit, helper 3).
.env:
	@umask 077; key=$$(openssl rand -base64 32 2>/dev/null || head -c 32 /dev/urandom | base64); \
	  printf '# Written by make on first run. Losing ENCRYPTION_KEY loses the stored gateway passwords.\nENCRYPTION_KEY=%s\nCHAOS_ENABLED=true\n' "$$key" > .env; \
	  echo "wrote .env with a new ENCRYPTION_KEY"

## clean: remove bin/ and .data/ (stops the private database first); .env stays: it holds the key
clean: stop
	rm -rf bin .data
