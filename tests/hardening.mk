# Hardening gates (issue 8), included by the Makefile.  `make check` runs them all after the
# plain test run; each also runs on its own:
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

.PHONY: hardening-gates asan-check valgrind-check fuzz-check fuzz fuzz-build lint cppcheck clang-tidy \
        banned-functions hardening-flags scan-output

HARDENING_GATES ?= yes
hardening-gates:
ifeq ($(HARDENING_GATES),yes)
	@$(MAKE) --no-print-directory asan-check valgrind-check fuzz-check lint
	@$(MAKE) --no-print-directory scan-output
endif

asan-check:
	@echo "== ASan + UBSan build ($(CLANG)) in $(ASAN_BUILD)"
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CC=$(CLANG) OPT="-O1 -g $(SANITIZE)" \
		HARDENING_GATES=no all $(patsubst $(BUILD)/%,$(ASAN_BUILD)/%,$(UNIT_BINS) $(INTEG_BINS))
	@$(SANITIZER_ENV) ERSD_BUILD=$(ASAN_BUILD) ERSD_OUTPUT_LOG=$(OUTPUT_LOG) \
		tests/run-tests $(patsubst $(BUILD)/%,$(ASAN_BUILD)/%,$(UNIT_BINS) $(INTEG_BINS))

valgrind-check: all $(BUILD)/tests/integration/test_sync $(BUILD)/tests/integration/test_operator
	@echo "== valgrind memcheck: the integration sync and the operators' commands"
	@ERSD_BUILD=$(BUILD) ERSD_OUTPUT_LOG=$(OUTPUT_LOG) ERSD_TEST_WRAPPER="$(VALGRIND)" \
		tests/run-tests $(BUILD)/tests/integration/test_sync $(BUILD)/tests/integration/test_operator

# The library and the targets with clang, libFuzzer, ASan and UBSan.
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(CLANG) \
		OPT="-O1 -g $(SANITIZE) -fsanitize=fuzzer-no-link" HARDENING_GATES=no $(FUZZ_BUILD)/libersd.a
	@$(MAKE) --no-print-directory HARDENING_GATES=no $(FUZZ_BINS)

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
