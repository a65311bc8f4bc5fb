# Tools the tests need are installed with `go install` into a cache outside the
# checkout, so a clean clone (CI) reuses them and a fresh machine builds them once.
CACHE_DIR    ?= $(HOME)/.cache/tokengate
YAEGI_VERSION = v0.16.1
YAEGI         = $(CACHE_DIR)/bin/yaegi-$(YAEGI_VERSION)
MODULE        = github.com/tokengate/traefik-oauth2-introspection

.PHONY: test lint unit yaegi-test fuzz

test: lint yaegi-test unit

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@! grep -qE '^\s*require' go.mod || { echo "go.mod must not require anything"; exit 1; }
	go vet ./...

unit:
	go test -race -count=1 ./...

# Runs the package and its tests inside yaegi v0.16.1, the interpreter in Traefik v3.6/v3.7.
# yaegi finds the package under GOPATH/src/<module>, so a temporary GOPATH links to here.
yaegi-test: $(YAEGI)
	@gopath=$$(mktemp -d) && trap 'rm -rf "$$gopath"' EXIT && \
	mkdir -p "$$gopath/src/$$(dirname $(MODULE))" && \
	ln -s "$(CURDIR)" "$$gopath/src/$(MODULE)" && \
	cd "$$gopath/src/$(MODULE)" && \
	GOPATH="$$gopath" GO111MODULE=off "$(YAEGI)" test -v .

$(YAEGI):
	@mkdir -p $(CACHE_DIR)/bin
	GOBIN=$(CACHE_DIR)/bin.tmp go install github.com/traefik/yaegi/cmd/yaegi@$(YAEGI_VERSION)
	mv $(CACHE_DIR)/bin.tmp/yaegi $@ && rm -rf $(CACHE_DIR)/bin.tmp

# Runs each fuzz target for FUZZTIME (development, not part of make test).
FUZZTIME ?= 1m
fuzz:
	go test -run '^$$' -fuzz '^FuzzExtract$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzParseResult$$' -fuzztime $(FUZZTIME) .
