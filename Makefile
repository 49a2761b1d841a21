# mptcpgod build, test and lint entry points. Every target works on a fresh
# Debian machine with Go installed; make test installs the rest as root
# (internal/testing/prereqs.sh), as .ci/run does.

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

.PHONY: all build test lint fuzz bench soak demo compat compat-unit clean

all: build

# build makes position-independent executables linked as a Debian package's
# are (dpkg-buildflags' hardening): PIE, read-only relocations and immediate
# binding (-z relro -z now), through the C linker, with the C library as
# their one shared library, and the runtime's C parts fortified; lintian
# checks the package for it (dist/deb_test.go). Cross-building needs the
# target's C compiler: make build GOARCH=arm64 CC=aarch64-linux-gnu-gcc.
EXTLDFLAGS := -Wl,-z,relro -Wl,-z,now
CGO_CFLAGS ?= -g -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2
build:
	CGO_ENABLED=1 CGO_CFLAGS='$(CGO_CFLAGS)' $(GO) build -trimpath -buildmode=pie \
		-ldflags '$(LDFLAGS) -linkmode=external -extldflags "$(EXTLDFLAGS)"' -o $(BIN)/ ./cmd/mptcpgod ./cmd/mptcpctl

# MODULES are the Go modules of the tree: the main one, and dist/kubernetes,
# whose test decodes the DaemonSet manifest into the Kubernetes API types
# (kept out of the main module's dependencies).
MODULES := . dist/kubernetes

# test runs every unit, fuzz-seed and real-kernel test, of every module.
# Real-kernel tests need root (they build their own hosts in network
# namespaces); with CI=true a test that cannot do so fails instead of
# skipping. First internal/testing/prereqs.sh installs the Debian packages
# the tests need when run as root with apt-get, or names them and stops
# (PREREQS=check only names them, PREREQS=off skips the check).
test:
	@sh internal/testing/prereqs.sh
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done
	@for m in $(MODULES); do \
	  echo "== go test $$m"; \
	  (cd $$m && $(GO) test -race -count=1 -timeout 12m $(TESTFLAGS) ./...) || exit 1; \
	done

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt would change:"; echo "$$fmt"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	@for m in $(MODULES); do (cd $$m && $(STATICCHECK) ./...) || exit 1; done

# fuzz runs every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$fz"; \
	    $(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# bench runs every package's benchmarks, then the side-by-side figures
# (mptcpgod, the in-kernel path manager, mptcpd when installed), once,
# written to docs/bench/.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m $$($(GO) list ./... | grep -v '/internal/testing/bench$$')
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./internal/testing/bench -bench.report

# soak runs the endurance suite (bounded: SOAKFLAGS='-soak.duration 2m'),
# which make test skips: link flaps, kill -9 and restarts under traffic,
# connection floods and bad control-socket requests (docs/soak.md).
SOAKFLAGS ?=
soak:
	$(GO) test -v -count=1 -run '^TestSoak$$' -timeout 30m ./internal/testing/soak -soak $(SOAKFLAGS)

# compat runs the real-kernel tests on every kernel of the compatibility
# matrix (docs/compatibility.md): each Debian kernel package listed in
# internal/compat/kernels.txt is fetched with apt-get download (never
# installed) and booted under qemu with the tests in its initramfs, and
# the running kernel's tests run natively. KERNELS chooses (names of
# kernels.txt, "running", or linux-image package names, comma or space
# separated); COMPAT_SUITE=ci is the subset .ci/run runs. Needs root, the
# apt lists (apt-get update), qemu-system-x86, busybox-static, iproute2 and
# kmod. The report goes to bin/compat/report.md; the package cache stays in
# bin/compat/cache.
KERNELS      ?=
COMPAT_SUITE ?= full
COMPATFLAGS  ?=
compat:
	$(GO) run ./internal/compat/cmd/compat -go $(GO) -kernels '$(KERNELS)' -suite $(COMPAT_SUITE) $(COMPATFLAGS)

# compat-unit runs the daemon under its shipped unit on a kernel of the
# matrix under qemu (default 6.12, which allows the BPF mechanism): systemd
# from this machine's /usr (shared read-only over virtio-9p) boots with
# dist/mptcpgod.service, dist/mptcpgod-bpf.conf, the sysusers.d entry and
# dist/mptcpgod.toml forcing a test service by its unit and another by its
# uid; a check forces a third with mptcpctl force unit, then lets it go,
# restarts the first ten times with every CPU busy, and reports whether
# each forced service's plain TCP listener is MPTCP every time and an
# unforced one's is not (docs/transparent-services.md). Needs what compat
# needs, and systemd, dbus-daemon and busybox-static on this machine. The
# guest's console and report go to bin/compat/unit/KERNEL/.
UNIT_KERNEL ?= 6.12
compat-unit:
	$(GO) run ./internal/compat/cmd/compatunit -go $(GO) -kernel '$(UNIT_KERNEL)'

clean:
	rm -rf $(BIN)

# demo builds the binaries and runs the daemon on a throwaway testbed (root):
# static busybox httpd and wget, under mptcpctl run, over one path and then
# meshed. It needs Debian's busybox-static (.ci/run installs it) and says so.
demo: build
	$(GO) run ./cmd/mptcpgod-demo -bin $(BIN)

# install copies the binaries, the systemd unit, the sysusers.d entry, the
# default configuration, the man pages, the shell completions and the docs
# into $(DESTDIR)$(PREFIX), the unit into $(PREFIX)/lib/systemd/system (in
# systemd's search path for /usr and /usr/local) with ExecStart= and
# Documentation= pointing at $(BINDIR) and $(DOCDIR). The configuration goes to $(SYSCONFDIR)/mptcpgod (default /etc,
# whatever PREFIX is, since the daemon reads /etc/mptcpgod/mptcpgod.toml) and
# an existing one is never overwritten. Then, as root: systemd-sysusers,
# systemctl daemon-reload, systemctl enable --now mptcpgod (docs/install.md).
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/mptcpgod
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
# zsh: Debian's fpath has vendor-completions for /usr, site-functions elsewhere.
ZSHCOMPDIR  ?= $(DATADIR)/zsh/$(if $(filter /usr,$(PREFIX)),vendor-completions,site-functions)
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
MANPAGES    := $(wildcard docs/man/*.[1-9])
DOCFILES    := README.md $(wildcard docs/*.md)

# deb builds $(DEBDIR)/mptcpgod_VERSION_ARCH.deb with nfpm (installed at the
# pinned version into $(GOBIN); 2.46 and later need modules the Go proxy
# cannot serve here). The files are staged by `make install`, plus the
# Debian changelog (dist/debchangelog.sh); the dependency on the C library
# comes from the binaries (dist/debdepends.sh).
NFPM_VERSION := v2.45.2
NFPM        := $(GOBIN)/nfpm
DEBDIR      ?= $(BIN)
DEB_ROOT     = $(BIN)/deb-root
DEB_VERSION ?= $(shell sh dist/debversion.sh)
DEB_ARCH    ?= $(or $(GOARCH),$(shell $(GO) env GOARCH))
DEB_LAYOUT  := PREFIX=/usr SYSCONFDIR=/etc BINDIR=/usr/bin \
	UNITDIR=/usr/lib/systemd/system SYSUSERSDIR=/usr/lib/sysusers.d \
	DATADIR=/usr/share MANDIR=/usr/share/man DOCDIR=/usr/share/doc/mptcpgod \
	BASHCOMPDIR=/usr/share/bash-completion/completions \
	ZSHCOMPDIR=/usr/share/zsh/vendor-completions \
	FISHCOMPDIR=/usr/share/fish/vendor_completions.d

.PHONY: install uninstall deb

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(SYSCONFDIR)/mptcpgod $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(BIN)/mptcpgod $(BIN)/mptcpctl $(DESTDIR)$(BINDIR)/
	sed -e '/^ExecStart=/s|/usr/bin/mptcpgod|$(BINDIR)/mptcpgod|' \
		-e '/^ExecStart=/s|/etc/mptcpgod/|$(SYSCONFDIR)/mptcpgod/|' \
		-e '/^Documentation=/s|/usr/share/doc/mptcpgod/|$(DOCDIR)/|' \
		dist/mptcpgod.service >$(BIN)/mptcpgod.service
	install -m 0644 $(BIN)/mptcpgod.service $(DESTDIR)$(UNITDIR)/mptcpgod.service
	install -m 0644 dist/sysusers.d/mptcpgod.conf $(DESTDIR)$(SYSUSERSDIR)/mptcpgod.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/mptcpgod/mptcpgod.toml || \
		install -m 0644 dist/mptcpgod.toml $(DESTDIR)$(SYSCONFDIR)/mptcpgod/mptcpgod.toml
	for m in $(MANPAGES); do \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/} || exit 1; \
	done
	install -m 0644 dist/completions/mptcpctl.bash $(DESTDIR)$(BASHCOMPDIR)/mptcpctl
	install -m 0644 dist/completions/_mptcpctl $(DESTDIR)$(ZSHCOMPDIR)/_mptcpctl
	install -m 0644 dist/completions/mptcpctl.fish $(DESTDIR)$(FISHCOMPDIR)/mptcpctl.fish
	install -m 0644 $(DOCFILES) $(DESTDIR)$(DOCDIR)/
	install -m 0644 LICENSE $(DESTDIR)$(DOCDIR)/copyright

# uninstall removes what install put there but the configuration.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mptcpgod $(DESTDIR)$(BINDIR)/mptcpctl \
		$(DESTDIR)$(UNITDIR)/mptcpgod.service $(DESTDIR)$(SYSUSERSDIR)/mptcpgod.conf \
		$(DESTDIR)$(BASHCOMPDIR)/mptcpctl $(DESTDIR)$(ZSHCOMPDIR)/_mptcpctl \
		$(DESTDIR)$(FISHCOMPDIR)/mptcpctl.fish \
		$(foreach m,$(MANPAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCFILES)) copyright)
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

deb: build
	@$(GO) version -m $(NFPM) 2>/dev/null | \
		grep -Eq '^[[:space:]]+mod[[:space:]]+github.com/goreleaser/nfpm/v2[[:space:]]+$(NFPM_VERSION)[[:space:]]' || \
		{ echo "installing nfpm $(NFPM_VERSION)"; env -u GOOS -u GOARCH $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION); }
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory install $(DEB_LAYOUT) DESTDIR=$(abspath $(DEB_ROOT))
	[ ! -d $(DEB_ROOT)/usr/share/man ] || find $(DEB_ROOT)/usr/share/man -type f -exec gzip -9n {} +
	sh dist/debchangelog.sh '$(DEB_VERSION)' >$(BIN)/deb-changelog
	gzip -9n <$(BIN)/deb-changelog >$(DEB_ROOT)/usr/share/doc/mptcpgod/changelog.gz
	sh dist/debdepends.sh $(BIN)/mptcpgod $(BIN)/mptcpctl >$(BIN)/deb-depends
	mkdir -p $(DEBDIR)
	DEB_ROOT=$(abspath $(DEB_ROOT)) DEB_VERSION='$(DEB_VERSION)' DEB_ARCH=$(DEB_ARCH) \
		DEB_LIBC="$$(cat $(BIN)/deb-depends)" \
		$(NFPM) package --config dist/nfpm.yaml --packager deb --target $(DEBDIR)/
