# What the tests need is built into a cache outside the checkout, so a clean clone (CI)
# reuses it and a fresh machine builds it once: yaegi with `go install`, the peers from
# their modules on the Go module proxy, oidc-provider with `npm ci` from the npm registry.
CACHE_DIR ?= $(HOME)/.cache/tokengate
override CACHE_DIR := $(abspath $(CACHE_DIR))
MODULE     = github.com/tokengate/traefik-oauth2-introspection

# Pinned versions, named by the README's compatibility line. yaegi (the interpreter in
# Traefik v3.6/v3.7) and zitadel/oidc (its example OP runs inside the tests) are pinned in
# e2e/go.mod, which the loader tests also build against.
TRAEFIK_VERSION = v3.6.12
HYDRA_VERSION   = v2.3.0
YAEGI_VERSION  := $(shell awk '$$1 == "github.com/traefik/yaegi" { print $$2 }' e2e/go.mod)
# staticcheck 2026.2.2. It rejects code for a newer Go than the one that built it, so the Go
# that e2e/go.mod selects (which reads both modules) builds it, and a new Go builds a new one.
STATICCHECK_VERSION = v0.8.2
GO_VERSION         := $(shell cd e2e && go env GOVERSION)

YAEGI   = $(CACHE_DIR)/bin/yaegi-$(YAEGI_VERSION)
STATICCHECK = $(CACHE_DIR)/bin/staticcheck-$(STATICCHECK_VERSION)-$(GO_VERSION)
TRAEFIK = $(CACHE_DIR)/bin/traefik-$(TRAEFIK_VERSION)
HYDRA   = $(CACHE_DIR)/bin/hydra-$(HYDRA_VERSION)
# node oidc-provider, pinned with its dependencies by e2e/oidc-provider/package-lock.json,
# installed in a folder named by that file's hash: a changed lock file installs anew.
OIDC_PROVIDER_LOCK = e2e/oidc-provider/package-lock.json
OIDC_PROVIDER = $(CACHE_DIR)/oidc-provider-$(shell sha256sum $(OIDC_PROVIDER_LOCK) | cut -c1-16)

.PHONY: test lint unit yaegi-test e2e demo bench wrk redis-server peers oidc-provider fuzz

test: lint yaegi-test unit e2e

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@! grep -qE '^\s*require' go.mod || { echo "go.mod must not require anything"; exit 1; }
	go vet ./...
	cd e2e && go vet ./...
	$(STATICCHECK) ./...
	cd e2e && $(STATICCHECK) ./...

# Each benchmark once too: a fixture that no longer fits the code fails here, not in make bench.
unit: redis-server
	go test -race -count=1 ./...
	go test -count=1 -run '^$$' -bench . -benchtime 1x .

# Runs the package and its tests inside yaegi, as Traefik runs the plugin.
# yaegi finds the package under GOPATH/src/<module>, so a temporary GOPATH links to here.
IN_YAEGI = gopath=$$(mktemp -d) && trap 'rm -rf "$$gopath"' EXIT && \
	mkdir -p "$$gopath/src/$$(dirname $(MODULE))" && \
	ln -s "$(CURDIR)" "$$gopath/src/$(MODULE)" && \
	cd "$$gopath/src/$(MODULE)" && \
	GOPATH="$$gopath" GO111MODULE=off "$(YAEGI)"

yaegi-test: $(YAEGI) redis-server
	@$(IN_YAEGI) test -v .

# The loader tests (Traefik's plugin loader and config decoding, no network) and the
# end-to-end tests through a real Traefik with Hydra, the zitadel/oidc example OP, node
# oidc-provider, the demo servers and the benchmark's checks; then, without -race, the
# interpreted herd (see e2e/loader/herd_test.go).
e2e: $(TRAEFIK) $(HYDRA) $(OIDC_PROVIDER) redis-server
	cd e2e && TRAEFIK_BIN=$(TRAEFIK) HYDRA_BIN=$(HYDRA) OIDC_PROVIDER_DIR=$(OIDC_PROVIDER) \
		go test -race -count=1 -timeout 30m ./...
	cd e2e && go test -count=1 -run '^TestInterpretedHerd$$' ./loader/

# The seed scenario, to watch and try by hand; stays up until Ctrl-C.
demo: $(TRAEFIK)
	cd e2e && TRAEFIK_BIN=$(TRAEFIK) go run ./demo

# The cost per request through a real Traefik, beside a no-op plugin and ForwardAuth, after
# the micro-benchmarks of the cache-hit path compiled, under yaegi test, and loaded as
# Traefik loads it. BENCHFLAGS goes to the benchmark (go run ./bench -h lists them).
BENCHFLAGS ?=
bench: $(TRAEFIK) $(YAEGI) wrk
	go test -run '^$$' -bench . -benchmem .
	@$(IN_YAEGI) test -run '^$$' -bench . -benchtime 20000x -benchmem .
	cd e2e && go test -run '^$$' -bench Interpreted -benchmem .
	cd e2e && TRAEFIK_BIN=$(TRAEFIK) go run ./bench $(BENCHFLAGS)

# wrk, the benchmark's load generator, from Debian's packages.
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)
wrk:
	@command -v wrk >/dev/null || $(SUDO) apt-get install -y wrk || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y wrk; }

# redis-server, the shared cache tier that the unit and end-to-end tests start, from Debian's
# packages.
redis-server:
	@command -v redis-server >/dev/null || $(SUDO) apt-get install -y redis-server || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server; }

peers: $(YAEGI) $(TRAEFIK) $(HYDRA) $(OIDC_PROVIDER) redis-server

oidc-provider: $(OIDC_PROVIDER)

$(YAEGI):
	@mkdir -p $(CACHE_DIR)/bin
	GOBIN=$(CACHE_DIR)/bin.tmp go install github.com/traefik/yaegi/cmd/yaegi@$(YAEGI_VERSION)
	mv $(CACHE_DIR)/bin.tmp/yaegi $@ && rm -rf $(CACHE_DIR)/bin.tmp

# Its own temporary GOBIN, so that make -j can build it beside yaegi.
$(STATICCHECK):
	@mkdir -p $(CACHE_DIR)/bin
	GOTOOLCHAIN=$(GO_VERSION) GOBIN=$@.tmp go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $@.tmp/staticcheck $@ && rm -rf $@.tmp

# About 4 minutes on 2 cores the first time.
$(TRAEFIK):
	e2e/build-peer.sh github.com/traefik/traefik/v3 $(TRAEFIK_VERSION) ./cmd/traefik $@

$(HYDRA):
	e2e/build-peer.sh github.com/ory/hydra/v2 $(HYDRA_VERSION) . $@ -tags sqlite

# npm ci in a temporary folder beside the final one, moved into place once complete:
# nothing is written into the checkout. No install scripts: none of its packages needs one.
$(OIDC_PROVIDER):
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		echo "The end-to-end tests run oidc-provider on Node.js (20 or later): install node and npm"; \
		echo "with the system's packages, e.g. $(strip $(SUDO) apt-get install nodejs npm)"; exit 1; }
	rm -rf $@.tmp && mkdir -p $@.tmp
	cp e2e/oidc-provider/package.json $(OIDC_PROVIDER_LOCK) $@.tmp/
	cd $@.tmp && npm ci --ignore-scripts --no-audit --no-fund
	mv $@.tmp $@

# Runs each fuzz target for FUZZTIME (development, not part of make test).
FUZZTIME ?= 1m
fuzz:
	go test -run '^$$' -fuzz '^FuzzExtract$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzParseResult$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzSignedAnswer$$' -fuzztime $(FUZZTIME) .
