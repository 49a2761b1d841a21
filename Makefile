# mptcpgod build, test and lint entry points. Every target works on a fresh
# Debian machine with Go installed; `.ci/run` installs the rest.

GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(GOBIN)/staticcheck
FUZZTIME  ?= 30s
TESTFLAGS ?=

.PHONY: all build test lint fuzz bench demo clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# test runs every unit, fuzz-seed and real-kernel test. Real-kernel tests need
# root (they build their own hosts in network namespaces); with CI=true a test
# that cannot do so fails instead of skipping.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m $(TESTFLAGS) ./...

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt would change:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(STATICCHECK) ./...

# fuzz runs every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$fz"; \
	    $(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

clean:
	rm -rf $(BIN)

# demo builds the binaries and runs the daemon on a throwaway testbed (root).
demo: build
	$(GO) run ./internal/demo -bin $(BIN)
