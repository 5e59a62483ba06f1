# dropq — the two commands: `make run` and `make test`. Both install what is
# missing (Debian packages) and build first.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_RELEASE ?= build-release
BUILD_PORTABLE ?= build-portable
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= examples/dropq.yaml

# Debian packages dropq needs to build, test and run with its defaults.
DEB_PACKAGES := cmake g++ make pkg-config \
  libuv1-dev libyaml-cpp-dev libsimdjson-dev libsqlite3-dev sqlite3 catch2 \
  nlohmann-json3-dev libspdlog-dev libcli11-dev libhowardhinnant-date-dev \
  libssl-dev tzdata bubblewrap libcpp-httplib-dev libsystemd-dev help2man ccache

# ccache (optional in CMakeLists.txt) shares objects between the build trees
# of one checkout: the package test's own release tree compiles what build/
# already compiled. Paths are made relative to the checkout for its hash.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

# `make deb` (and its test, tests/packaging/) needs these to build and check
# the .deb.
PACKAGE_PACKAGES := dpkg-dev fakeroot lintian

# Only the tests need these: the dashboard's browser test runs Debian's
# Chromium through playwright-core (npm).
# The kubernetes runtime's tests validate every pod spec against the vendored
# Pod schema with python3-jsonschema (tests/runner/kubernetes/).
# The Slurm runtime's tests start a single-node cluster (tests/slurm/).
SLURM_PACKAGES := slurm-wlm munge
TEST_PACKAGES := chromium openssl python3-jsonschema $(PACKAGE_PACKAGES) $(SLURM_PACKAGES)

# `make install`: where, and an optional staging root.
PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD_DEB  ?= build-deb

# Only `make bench` needs the peers it is measured against.
BENCH_PACKAGES := task-spooler nq

# Only the fuzzers need clang and its libFuzzer runtime.
FUZZ_PACKAGES := clang libclang-rt-14-dev llvm

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps install deb package-deps fuzz-deps test-deps configure build test test-asan test-portable fuzz fuzz-smoke chaos chaos-smoke run bench clean

all: build

# Installs only what is missing, so it costs one dpkg-query when all is there.
# Elsewhere than Debian (macOS) it only says what it would need.
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES)"

# node and npm come with the machine (or NodeSource); Debian's are installed
# only when there is no npm at all, so they never fight a NodeSource nodejs.
test-deps: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(TEST_PACKAGES)"
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory install-packages PACKAGES="nodejs npm"

fuzz-deps: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(FUZZ_PACKAGES)"

install-packages:
	@if command -v dpkg-query >/dev/null 2>&1; then \
	  missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else \
	  echo "not Debian: install libuv, yaml-cpp, simdjson, sqlite3, catch2 v2, nlohmann-json, spdlog, CLI11, date, openssl yourself"; \
	fi

package-deps: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(PACKAGE_PACKAGES)"

# The binary, the demo agent, the man page, the example config (sysconfdir:
# /etc with PREFIX=/usr, else $(PREFIX)/etc) and the systemd unit
# (docs/SERVICE.md). Uses its own build tree: paths are fixed at configure time.
install: deps
	@cmake -S . -B $(BUILD)-install -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(BUILD)-install -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)-install

# The Debian package, $(BUILD_DEB)/dropq_<version>_<arch>.deb, checked with lintian.
deb: package-deps
	@cmake -S . -B $(BUILD_DEB) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(BUILD_DEB) -j $(JOBS)
	@rm -f $(BUILD_DEB)/dropq_*.deb
	@cd $(BUILD_DEB) && cpack -G DEB
	lintian $(BUILD_DEB)/dropq_*.deb

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build test-deps
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer —
# but the package test (label `packaging`), which builds and installs its own
# release tree, so the sanitizers would not see it: `make test` runs it.
test-asan: test-deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DDROPQ_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS) -LE packaging

# The tests that start child processes (ctest label `process`: base/process.h,
# the runner's folder, the on_message hook, every end-to-end test) on a build
# with the portable process backend — libuv's uv_spawn, as on macOS — instead
# of posix_spawn + pidfd (docs/DESIGN.md, "Running an attempt").
test-portable: deps
	@cmake -S . -B $(BUILD_PORTABLE) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDROPQ_PORTABLE_PROCESS=ON >/dev/null
	@cmake --build $(BUILD_PORTABLE) -j $(JOBS)
	ctest --test-dir $(BUILD_PORTABLE) --output-on-failure -j $(JOBS) -L process

# The daemon in the foreground on the demo config (root ./var, bwrap, demo agent).
# On a fresh root (no var/ yet) the example job files are dropped first, so
# jobs run within seconds of starting.
run: configure
	@cmake --build $(BUILD) -j $(JOBS) --target dropq demo-agent
	@if [ ! -d var ]; then \
	  for d in examples/jobs/*/; do \
	    g=$$(basename $$d); mkdir -p var/data/ipc/$$g/tasks; cp $$d*.json var/data/ipc/$$g/tasks/; \
	  done; \
	  echo "fresh root: dropped the example jobs from examples/jobs/ into var/data/ipc/<group>/tasks/"; \
	fi
	./$(BUILD)/dropq run --config $(CONFIG)

# libFuzzer targets under ASan/UBSan (clang), 60 s each; crashes land in
# build-fuzz/crashes/. fuzz-smoke runs each for 10 s (CI).
fuzz: fuzz-deps
	fuzz/run.sh 60

fuzz-smoke: fuzz-deps
	fuzz/run.sh 10

# Fault injection: drop jobs across 10 groups while kill -9'ing the daemon,
# then check every file became exactly one succeeded job with one result
# file and a whole audit trail (docs/RELIABILITY.md). chaos-smoke runs in CI.
chaos: configure
	tests/chaos/run.sh 2000 10

chaos-smoke: configure
	tests/chaos/run.sh 300 4

# The scenarios of docs/PERFORMANCE.md against xargs, task-spooler and nq, on
# a Release build (-O2: GCC 12's -O3 trips a false -Wrestrict) in its own
# directory; prints the table and rewrites it in docs/PERFORMANCE.md. Sizes
# come from BENCH_* variables (e.g. BENCH_REPEATS=1 BENCH_IDLE_S=5); BENCH_ONLY
# picks scenarios (then the table is printed, the doc left alone). Not part
# of `make test` or CI.
bench: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(BENCH_PACKAGES)"
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS) --target dropq bench-agent dropq-bench
	$(BUILD_RELEASE)/dropq-bench --dropq $(BUILD_RELEASE)/dropq --agent $(BUILD_RELEASE)/bench-agent \
	  $(if $(BENCH_ONLY),--only $(BENCH_ONLY),--doc docs/PERFORMANCE.md)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_RELEASE) $(BUILD_PORTABLE)
