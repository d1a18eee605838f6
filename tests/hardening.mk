# Hardening gates (issue 8), included by the Makefile.  `make check` runs them all: the ASan
# run after its tests and valgrind and lint beside them, then the fuzzers, then the output scan
# (see the Makefile's check).  `make hardening-gates` runs them all without the tests, the ASan
# run beside valgrind.  Each also runs on its own:
#
#   make asan-check      every unit and integration test again, built with clang, ASan + UBSan
#   make valgrind-check  the integration sync and the operators' commands under valgrind memcheck
#                        (ersd and the test binaries)
#   make fuzz-check      each libFuzzer target for FUZZ_SECONDS (default 30), corpus replayed first
#   make fuzz            the same for FUZZ_LONG_SECONDS (default 600) each; findings in build/fuzz/
#   make lint            cppcheck, clang-tidy, banned functions, and the hardening of build/ersd
#   make scan-output     scans what the test runs printed for NHS numbers, tokens and secrets
#
# Sanitizer, fuzz and valgrind builds live in their own directories under $(BUILD), so they
# never clobber the normal build.  Inner makes run with HARDENING_GATES=no so they do not recurse.

CLANG             ?= clang
SANITIZE          := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_BUILD        := $(BUILD)/asan
FUZZ_BUILD        := $(BUILD)/fuzz
FUZZ_SECONDS      ?= 30
FUZZ_LONG_SECONDS ?= 600
FUZZ_TARGETS      := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS         := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
# Everything the test runs print is collected here and scanned afterwards.
OUTPUT_LOG        := $(BUILD)/check-output.log
SANITIZER_ENV     := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
                     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                     LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0
VALGRIND          := valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
                     --errors-for-leak-kinds=definite,indirect --track-fds=no --num-callers=30 \
                     --suppressions=tests/sanitizers/valgrind.supp \
                     --trace-children=yes --trace-children-skip=*/mock-ers

.PHONY: hardening-gates hardening-build hardening-beside hardening-after asan-build asan-check valgrind-check \
        fuzz-check fuzz fuzz-build lint cppcheck clang-tidy banned-functions hardening-flags scan-output

HARDENING_GATES ?= yes
hardening-gates:
ifeq ($(HARDENING_GATES),yes)
	@$(CHECK_MAKE) --output-sync=recurse asan-check valgrind-check lint
	@$(MAKE) --no-print-directory fuzz-check
	@$(MAKE) --no-print-directory scan-output
endif

# How `make check` runs them (the Makefile): hardening-build with its own build, before any
# test; hardening-beside beside its tests (the ASan run after them: ASAN_AFTER=check-tests);
# hardening-after last: valgrind alone, one binary at a time (under valgrind ersd is slow
# enough that a busy machine makes its transfers meet their deadlines, which the tests would
# read as errors), then the fuzzers.  Nothing of these with HARDENING_GATES=no.
ifeq ($(HARDENING_GATES),yes)
hardening-build: asan-build fuzz-build
hardening-beside: asan-check lint
hardening-after: valgrind-check
	@$(MAKE) --no-print-directory fuzz-check
	@$(MAKE) --no-print-directory scan-output
else
hardening-build hardening-beside hardening-after:
endif

# Makes what it is given, saying nothing when all of it is up to date (make check built it).
# Its lines start with `+`: make sees no $(MAKE) in a $(call), and would keep its -j from them.
MAKE_QUIETLY = $(MAKE) --no-print-directory -q $(1) 2>/dev/null || $(MAKE) --no-print-directory $(1)

ASAN_BINS := $(patsubst $(BUILD)/%,$(ASAN_BUILD)/%,$(UNIT_BINS) $(INTEG_BINS))
asan-build:
	@+$(call MAKE_QUIETLY,BUILD=$(ASAN_BUILD) CC=$(CLANG) OPT="-O1 -g $(SANITIZE)" HARDENING_GATES=no all $(ASAN_BINS))

asan-check: asan-build | $(ASAN_AFTER)
	@echo "== ASan + UBSan ($(CLANG), built in $(ASAN_BUILD)): every unit and integration test"
	@$(SANITIZER_ENV) ERSD_BUILD=$(ASAN_BUILD) ERSD_OUTPUT_LOG=$(OUTPUT_LOG) ERSD_TEST_JOBS=$(CHECK_JOBS) \
		tests/run-tests $(ASAN_BINS)

valgrind-check: all $(BUILD)/tests/integration/test_sync $(BUILD)/tests/integration/test_operator
	@echo "== valgrind memcheck: the integration sync and the operators' commands"
	@ERSD_BUILD=$(BUILD) ERSD_OUTPUT_LOG=$(OUTPUT_LOG) ERSD_TEST_WRAPPER="$(VALGRIND)" ERSD_TEST_JOBS=1 \
		tests/run-tests $(BUILD)/tests/integration/test_sync $(BUILD)/tests/integration/test_operator

# The library and the targets with clang, libFuzzer, ASan and UBSan.
fuzz-build:
	@+$(call MAKE_QUIETLY,BUILD=$(FUZZ_BUILD) CC=$(CLANG) OPT="-O1 -g $(SANITIZE) -fsanitize=fuzzer-no-link" \
		HARDENING_GATES=no $(FUZZ_BUILD)/libersd.a)
	@+$(call MAKE_QUIETLY,HARDENING_GATES=no $(FUZZ_BINS))

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libersd.a
	$(CLANG) $(CPPFLAGS) -std=c11 $(WARN) -O1 -g $(SANITIZE) -fsanitize=fuzzer $(PKG_CFLAGS) \
		-o $@ $< $(FUZZ_BUILD)/libersd.a $(PKG_LIBS)

fuzz-check: fuzz-build
	@tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz: fuzz-build
	@tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_LONG_SECONDS) $(FUZZ_TARGETS)

lint: cppcheck clang-tidy banned-functions hardening-flags

# The check sets and why are in .clang-tidy and tests/sanitizers/cppcheck.supp.
LINT_SRCS = $(wildcard daemon/*.c adapters/*.c)
cppcheck:
	@echo "== cppcheck"
	@cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
		--inline-suppr --suppressions-list=tests/sanitizers/cppcheck.supp -D_GNU_SOURCE -I. \
		$(LINT_SRCS)

clang-tidy:
	@echo "== clang-tidy"
	@mkdir -p $(BUILD)
	@clang-tidy --quiet $(LINT_SRCS) -- $(CPPFLAGS) -std=c11 $(PKG_CFLAGS) 2>$(BUILD)/clang-tidy.stderr || \
		{ cat $(BUILD)/clang-tidy.stderr; exit 1; }

banned-functions:
	@echo "== banned functions"
	@tests/banned-functions daemon adapters tests

hardening-flags: $(BUILD)/ersd
	@echo "== hardening of $(BUILD)/ersd"
	@tests/check-hardening $(BUILD)/ersd

scan-output:
	@echo "== scanning test output for patient identifiers, tokens and secrets"
	@tests/scan-output --self-test
	@tests/scan-output --fixtures
	@tests/scan-output $(OUTPUT_LOG)
