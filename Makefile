# gmca — the two commands a new user needs:
#   make run    install what is missing, build, create a demo CA, show it working
#   make test   install what is missing, build (also under ASan+UBSan), run every test
.PHONY: all deps build build-asan test test-pg run bench bench-crl bench-ocsp bench-load fuzz format format-check lint clean install

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
DEMO ?= var/demo

all: build

deps:
	@scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGMCA_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

test:
	@scripts/deps.sh --with-npm
	@$(MAKE) --no-print-directory build build-asan
	@scripts/lint.sh
	@echo "== unit and fuzz-corpus tests under AddressSanitizer + UBSan"
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)
	@echo "== all tests (unit, fuzz corpus, end-to-end, interoperability)"
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Only the PostgreSQL runs (a throwaway cluster, tests/pg.bash): the store's unit tests and
# end-to-end tests with every CA on PostgreSQL; part of `make test` too.
test-pg: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -R '^pg/|pg_concurrent'

# The gmca command and libgmca (libgmca.so, libgmca.a, include/gmca/gmca.h,
# gmca.pc) under PREFIX; DESTDIR is honoured for staged installs.
PREFIX ?= /usr/local
install:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cmake --install $(BUILD) --prefix $(PREFIX)

run: deps build
	@scripts/demo.sh $(BUILD)/gmca $(DEMO)

bench: deps build
	@bench/issue.sh $(BUILD)

# A CRL of 1,000,000 (and 100,000) revoked entries next to openssl ca -gencrl (issue 5).
bench-crl: deps build
	@bench/crl.sh $(BUILD)

# The OCSP responder under wrk next to nginx, openssl ocsp and raw SM2 signing (issue 5);
# installs wrk and nginx itself if missing.
bench-ocsp: deps build
	@bench/ocsp.sh $(BUILD)

# 100 API clients issuing, revoking and asking OCSP for 60 s, then the records checked
# (issue 9; tests/e2e/load_short.sh runs it for 10 s in make test). LOAD_CLIENTS, LOAD_SECONDS.
bench-load: deps build
	@bench/load.sh $(BUILD)

# libFuzzer on every parser of outside input, FUZZ_SECONDS each (not part of make test,
# which replays the corpora under the sanitizers).
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGMCA_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
		-DGMCA_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@for f in build-fuzz/fuzz_*; do n=$${f##*/fuzz_}; echo "== $$n"; \
		mkdir -p build-fuzz/corpus/$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/$$n fuzz/corpus/$$n || exit 1; done

format:
	@clang-format -i src/lib/*.[ch] src/gmca/*.[ch] src/serve/*.[ch] tests/unit/*.c fuzz/*.c bench/*.c examples/*.c

format-check:
	@scripts/lint.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
