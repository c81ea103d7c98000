# kubearmor-host. `make run` and `make test` set up what they need on a fresh
# Debian 12 machine, as root.

GO       ?= go
BIN      ?= bin
VERSION  ?= 0.1.0-dev
# -s -w: no symbol table or DWARF (packaged binaries are stripped).
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Generated code, checked in so that `go build` needs neither clang nor
# protoc: BPF objects and their bindings (bpf2go), and the gRPC API (protoc).
GENERATED := $(wildcard */*/*_bpfel.go */*/*_bpfel.o */*/*/*.pb.go)

# Debian packages the build and the tests use. clang and llvm (llvm-strip)
# regenerate the BPF objects, protobuf-compiler the API's Go code; rpm,
# lintian, gnupg and binutils check the packages; qemu, busybox-static and apt's download of
# Debian kernels run the VM tier, debootstrap the Debian system the packages
# are installed on; systemd provides journald for its test.
DEB_PACKAGES := clang llvm protobuf-compiler rpm lintian gnupg binutils qemu-system-x86 busybox-static debootstrap systemd ca-certificates apparmor

.PHONY: all build run test deps generate check-generate vet prepare host unit fuzz guests vm bench bench-loss package clean
# The steps of make test run in the order written, never side by side, even
# under make -j: a guest must not share the two cores.
.NOTPARALLEL:

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kubearmor ./cmd/kubearmor
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/karmor ./cmd/karmor

# The deb and rpm, SHA256SUMS and, with SIGNING_KEY (an armored OpenPGP
# private key; passphrase in NFPM_PASSPHRASE), their signatures, and with
# COSIGN_KEY (cosign generate-key-pair's; password in COSIGN_PASSWORD) a
# cosign bundle of each, in dist/.
SIGNING_KEY ?=
COSIGN_KEY ?=
package: build
	$(GO) run ./packaging/build -version $(VERSION) -bin $(BIN) -out dist -key "$(SIGNING_KEY)" -cosign-key "$(COSIGN_KEY)"

# Runs the daemon in the foreground with the example policies. Ctrl-C stops it.
run: build
	$(BIN)/kubearmor --config= --policyDir=$(CURDIR)/examples/policies

# Every tier: unit and host kernel (root), then the QEMU guests on Debian's
# 6.1 and 6.12 cloud kernels and the Debian system; plus the generated-code
# drift check and a bounded fuzz run of the policy parser. The one-time work
# (prepare) comes first and the guests last, one at a time: a guest under
# TCG never shares the two cores with a build, a host test or another guest.
test: deps check-generate vet prepare host fuzz guests
	@echo "make test: passed in $$(( $$(date +%s) - $(MAKE_STARTED) )) s"

# When make started, for the total make test prints.
MAKE_STARTED := $(shell date +%s)

# timed runs a command, shown first, and says how long its target took.
timed = echo '$(subst ','"'"',$(1))'; start=$$(date +%s); $(1); rc=$$?; \
	echo "make $@: $$(( $$(date +%s) - start )) s"; exit $$rc

deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
		echo "apt-get update (kernel packages for the VM tier come from the lists)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
		if [ -n "$$missing" ]; then \
			echo "installing:" $$missing; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		fi; \
	else \
		echo "not root or no apt-get: make sure these are installed: $(DEB_PACKAGES)"; \
	fi

generate:
	$(GO) generate ./...

# Regenerates the generated code and fails if it differs from the checked-in
# files. Skipped, with a note, where clang or protoc is missing.
check-generate:
	@for t in clang protoc; do command -v $$t >/dev/null || { echo "check-generate: $$t not installed, skipping"; exit 0; }; done; \
	tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	for f in $(GENERATED); do mkdir -p $$tmp/$$(dirname $$f); cp $$f $$tmp/$$f; done; \
	$(GO) generate ./... || exit 1; \
	drift=0; for f in $(GENERATED); do cmp -s $$f $$tmp/$$f || { echo "drift: $$f"; drift=1; }; done; \
	if [ $$drift = 1 ]; then echo "generated files are out of date: run 'make generate' and commit them"; exit 1; fi; \
	echo "check-generate: $(words $(GENERATED)) generated files are up to date"

vet:
	$(GO) vet ./...

# The packages whose tests boot QEMU guests (internal/vmtest's own and
# TestGuests; packaging/build's TestSystem), relative to the module.
MODULE     := github.com/kubearmor/kubearmor-host
GUEST_PKGS := internal/vmtest packaging/build
HOST_PKGS   = $(filter-out $(addprefix $(MODULE)/,$(GUEST_PKGS)),$(shell $(GO) list ./...))
# Each guest's time against its limit, per package (internal/vmtest).
DURATIONS  := $(BIN)/vmtest-durations.txt

# The kernels, the Debian root, cosign and the guests' test binaries, each
# cached; prints what each took.
prepare:
	@$(call timed,$(GO) run ./internal/vmtest/prepare)

# Unit and host-kernel tests: every package but the guest ones.
host:
	@$(call timed,$(GO) test -count=1 -timeout 20m $(HOST_PKGS))

# Every package, as one go test run (the guests then share the cores with
# the other packages' tests: for a quick local run, not for timing).
unit:
	$(GO) test -count=1 -timeout 60m ./...

# The guest tiers, one package at a time (-p 1) and one test at a time
# (-parallel 1: the harness's own tests boot guests too), then each guest's
# duration against its limit.
guests:
	@mkdir -p $(BIN); rm -f $(DURATIONS)
	@start=$$(date +%s); KUBEARMOR_VMTEST_DURATIONS=$(abspath $(DURATIONS)) $(GO) test -count=1 -p 1 -parallel 1 -timeout 60m $(addprefix ./,$(GUEST_PKGS)); rc=$$?; \
	echo "make $@: $$(( $$(date +%s) - start )) s"; \
	echo; echo "guest durations (each guest should take at most half its limit):"; \
	cat $(DURATIONS) 2>/dev/null || echo "(none recorded)"; exit $$rc

fuzz:
	@$(call timed,$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./policy)

# Only the VM tier, e.g. KUBEARMOR_VMTEST_RUN=TestPolicyLifecycle make vm.
vm:
	$(GO) test -count=1 -timeout 60m -run TestGuests -v ./internal/vmtest

# The enforcement benchmark, in the QEMU guests: once on the wall clock (all
# loops) and once on a clock that counts instructions (the open/close loops,
# where the target is; see docs/benchmarks.md). Results go to
# docs/benchmarks.md with the commands.
# The counting pass also measures the file_open program's own cost per call
# (BenchmarkHookCost), which says where the ratios come from.
BENCH_CMD := KUBEARMOR_VMTEST_PKGS=./enforcer/bpflsm KUBEARMOR_VMTEST_RUN='^$$' \
	KUBEARMOR_VMTEST_ARGS='-test.bench=^BenchmarkEnforcement$$ -test.benchtime=1x' KUBEARMOR_VMTEST_TIMEOUT=60m \
	$(GO) test -count=1 -timeout 150m -run TestGuests -v ./internal/vmtest
BENCH_ICOUNT_CMD := KUBEARMOR_VMTEST_ICOUNT=1 KUBEARMOR_VMTEST_PKGS=./enforcer/bpflsm KUBEARMOR_VMTEST_RUN='^$$' \
	KUBEARMOR_VMTEST_ARGS='-test.bench=^(BenchmarkEnforcement|BenchmarkHookCost)$$ -test.benchtime=1x' KUBEARMOR_VMTEST_TIMEOUT=60m \
	$(GO) test -count=1 -timeout 150m -run TestGuests -v ./internal/vmtest

# The daemon's start-up in the guests: process start to READY=1 with the
# daemon's own steps (BenchmarkStartup), and the BPF-LSM enforcer's Load
# with each program's verification as the kernel accounts it (BenchmarkLoad).
BENCH_STARTUP_CMD := KUBEARMOR_VMTEST_PKGS='./enforcer/bpflsm ./cmd/kubearmor' KUBEARMOR_VMTEST_RUN='^$$' \
	KUBEARMOR_VMTEST_ARGS='-test.bench=^(BenchmarkLoad|BenchmarkStartup)$$ -test.benchtime=1x' \
	$(GO) test -count=1 -timeout 60m -run TestGuests -v ./internal/vmtest

# The telemetry pipeline's throughput, CPU and memory, on this machine's
# own kernel (the daemon observes; nothing needs BPF-LSM).
BENCH_TELEMETRY_CMD := $(GO) test -count=1 -run '^$$' -bench '^BenchmarkTelemetry$$' -benchtime 1x -timeout 20m ./cmd/kubearmor

bench: deps
	@mkdir -p $(BIN)
	$(BENCH_CMD) | tee $(BIN)/bench.log
	$(BENCH_ICOUNT_CMD) | tee $(BIN)/bench-icount.log
	$(BENCH_STARTUP_CMD) | tee $(BIN)/bench-startup.log
	$(BENCH_TELEMETRY_CMD) | tee $(BIN)/bench-telemetry.log
	@{ echo; echo "## $$(date -u +%Y-%m-%d): make bench"; echo; \
	  echo "On $$(nproc) cores, QEMU TCG; \`make bench\` ran:"; echo; echo '```'; \
	  echo '$(subst ','"'"',$(BENCH_CMD))'; echo '$(subst ','"'"',$(BENCH_ICOUNT_CMD))'; \
	  echo '$(subst ','"'"',$(BENCH_STARTUP_CMD))'; echo '$(subst ','"'"',$(BENCH_TELEMETRY_CMD))'; echo '```'; \
	  awk '/---8<--- benchmark results/{on=1; next} /--->8---/{on=0; print ""} on {sub(/^ +/, ""); print}' $(BIN)/bench.log $(BIN)/bench-icount.log $(BIN)/bench-startup.log $(BIN)/bench-telemetry.log; \
	} >> docs/benchmarks.md
	@echo "appended to docs/benchmarks.md"

# The side-by-side alert-loss benchmark, in the QEMU guests: BPF-LSM with its
# ring buffer, and AppArmor with the audit log and with the eBPF path, on the
# same rule, at 1,000, 10,000 and 100,000 violations a second and flat out
# (enforcer/alertloss). Results go to docs/benchmarks.md with the command.
BENCH_LOSS_CMD := KUBEARMOR_VMTEST_PKGS=./enforcer/alertloss KUBEARMOR_VMTEST_RUN='^$$' \
	KUBEARMOR_VMTEST_ARGS='-test.bench=^BenchmarkAlertLoss$$ -test.benchtime=1x' KUBEARMOR_VMTEST_TIMEOUT=20m \
	$(GO) test -count=1 -timeout 60m -run TestGuests -v ./internal/vmtest

bench-loss: deps
	@mkdir -p $(BIN)
	$(BENCH_LOSS_CMD) | tee $(BIN)/bench-loss.log
	@{ echo; echo "## $$(date -u +%Y-%m-%d): make bench-loss"; echo; \
	  echo "On $$(nproc) cores, QEMU TCG; \`make bench-loss\` ran:"; echo; echo '```'; \
	  echo '$(subst ','"'"',$(BENCH_LOSS_CMD))'; echo '```'; \
	  awk '/---8<--- benchmark results/{on=1; next} /--->8---/{on=0; print ""} on {sub(/^ +/, ""); print}' $(BIN)/bench-loss.log; \
	} >> docs/benchmarks.md
	@echo "appended to docs/benchmarks.md"

clean:
	rm -rf $(BIN)
