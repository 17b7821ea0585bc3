# bitw: the two set-up commands are `make demo` and `make test` (README.md).
GO      ?= go
BOARD   ?= mx6ullevk
CONFIG  ?= examples/site-a.toml
FUZZTIME ?= 30s
BUILD   := build

.PHONY: all bitw test unit e2e qemu-e2e demo firmware bench fuzz clean

all: bitw

# The host runtime: one static binary.
bitw:
	@mkdir -p $(BUILD)
	$(GO) build -o $(BUILD)/bitw ./firmware

# Unit tests, then the network-namespace end-to-end suite, then the QEMU
# firmware suite (which prints SKIPPED when the TamaGo compiler is absent).
test: unit e2e qemu-e2e

unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

e2e: bitw
	BITW_E2E=1 BITW_BIN=$(CURDIR)/$(BUILD)/bitw $(GO) test -count=1 -timeout 40m -v ./test/e2e/...

qemu-e2e:
	@scripts/qemu-e2e.sh

demo: bitw
	@scripts/demo.sh

firmware:
	@scripts/firmware.sh "$(BOARD)" "$(CONFIG)"

bench:
	@scripts/bench.sh

# Every Fuzz target in the tree, each for FUZZTIME.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BUILD)
