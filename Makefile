# asfence: see README.md. Every target works from a fresh clone.
GO        ?= go
BIN       ?= bin/asfence
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.Version=$(VERSION)
# Snapshot inputs are dated; the snapshot time is fixed so that `make snapshot`
# is reproducible (same inputs, same bytes).
SNAPSHOT_AT ?= 2026-11-23T00:00:00Z
# Packages the tests need: real routing daemons, config checkers, bgpq4,
# chromium (the review console's browser tests), bgpdump (the reference for
# routing tables) and GNU time (benchmarks' peak RSS).
DEBS      := bird2 frr gobgpd exabgp bgpq4 openbgpd nftables iproute2 iputils-ping netcat-openbsd jq chromium bgpdump time
TOOLS     := bird birdc vtysh gobgpd gobgp exabgp bgpq4 nft ip ping nc.openbsd jq chromium bgpdump
# staticcheck, pinned, run from the Go module proxy (no global install).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-unit integration bench lint snapshot deps clean

all: lint build test

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/asfence

# The main job on the embedded default data.
run: build
	./scripts/run-demo.sh $(BIN)

# The tests run under the race detector; `make test RACE=` runs them without
# it (faster). Every package runs with -race; what cannot is
# left out file by file, with the reason:
# - bio-rd's BGP server races inside bio-rd (its Metrics and LocRIB.Dump
#   against its FSM goroutines), so integration/bgp_biord_test.go, the one
#   test that runs it, is built only without -race (//go:build !race).
#   internal/bmp uses only bio-rd's BMP packet decoder, which starts no
#   goroutine: it runs under -race.
# - GoBGP keeps route-selection options in process-wide variables that every
#   server's start writes, so tests that start GoBGP servers (bgp, cmd/asfence,
#   integration) run one after another under -race (lab.Parallel), not in
#   parallel.
# - The race detector slows scanning about tenfold: asn/tables and
#   asn/whoisdump read smaller inputs in their memory tests under -race
#   (race_test.go).
RACE         ?= -race
TEST_TIMEOUT ?= $(if $(RACE),60m,20m)

# Everything: unit tests and the tests against real daemons (needs root for
# network namespaces; installs missing Debian packages first).
test: deps
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) ./...

test-unit:
	$(GO) test $(RACE) -count=1 -short ./...

# The tests against real daemons only, including the end-to-end scenarios on
# the containerlab topology built in network namespaces (make test runs them too).
integration: deps
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) ./integration/...

bench: deps build
	./scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

snapshot:
	$(GO) run ./cmd/asfence resolve --config asn/data/snapshot.yaml --at $(SNAPSHOT_AT) --format json > asn/data/default.json.tmp
	mv asn/data/default.json.tmp asn/data/default.json
	@sha256sum asn/data/default.json

# Installs the test prerequisites when one is missing (Debian/Ubuntu).
deps:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || [ -x /usr/sbin/$$t ] || missing="$$missing $$t"; done; \
	[ -x /usr/lib/frr/bgpd ] || missing="$$missing frr-bgpd"; \
	[ -x /usr/bin/time ] || missing="$$missing time"; \
	if [ -n "$$missing" ]; then \
		echo "installing test prerequisites (missing:$$missing)"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	fi
	@mkdir -p /run/openbgpd 2>/dev/null || true

clean:
	rm -rf bin out
