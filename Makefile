# ersd — build, test and demo.  `make` builds build/ersd; `make check` runs every test;
# `make demo` syncs the mock e-RS into a demo SQLite PAS.  See README.md.

CC        ?= cc
BUILD     ?= build
PREFIX    ?= /usr/local
PKG_CONFIG ?= pkg-config

# Libraries, all from the distribution, found with pkg-config (evaluated when used, so `make deps all`
# works on a machine that has none of them yet).  No libxml2: e-RS speaks FHIR JSON only.
PKGS      := libcurl json-c odbc libconfig libcrypto
TEST_PKGS := cmocka
MOCK_PKGS := libmicrohttpd json-c libcrypto gnutls

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security -Wstrict-prototypes \
        -Wmissing-prototypes -Wold-style-definition -Wvla -Wpointer-arith -Wundef \
        -Wnull-dereference -Wimplicit-fallthrough
# _FORTIFY_SOURCE=3 where the compiler has __builtin_dynamic_object_size (gcc 12, clang); glibc
# itself drops to level 2 otherwise.  -U first: some distributions' compilers predefine it.
HARDEN := -fstack-protector-strong -fPIE -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3
OPT    ?= -O2 -g

CFLAGS   ?=
CPPFLAGS += -D_GNU_SOURCE -I.
ALL_CFLAGS = -std=c11 $(WARN) $(HARDEN) $(OPT) $(CFLAGS)
LDHARDEN  = -pie -Wl,-z,relro,-z,now

PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS)) $(SYSTEMD_CFLAGS)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS)) $(SYSTEMD_LIBS)
# libsystemd (sd_notify, the journal) when the machine has it; without it ersd builds and runs,
# telling systemd nothing and logging to stderr with the "<N>" prefix.
SYSTEMD_CFLAGS = $(shell $(PKG_CONFIG) --exists libsystemd && echo -DHAVE_LIBSYSTEMD $$($(PKG_CONFIG) --cflags libsystemd))
SYSTEMD_LIBS = $(shell $(PKG_CONFIG) --exists libsystemd && $(PKG_CONFIG) --libs libsystemd)
TEST_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS))
TEST_LIBS = $(shell $(PKG_CONFIG) --libs $(TEST_PKGS))
MOCK_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(MOCK_PKGS))
MOCK_LIBS = $(shell $(PKG_CONFIG) --libs $(MOCK_PKGS))

LIB_SRCS  := $(filter-out daemon/main.c,$(wildcard daemon/*.c)) $(wildcard adapters/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ  := $(BUILD)/obj/daemon/main.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(BUILD)/tests/integration/%)
MOCK_SRCS := $(wildcard tests/mock-ers/*.c)
MOCK_OBJS := $(MOCK_SRCS:%.c=$(BUILD)/obj/%.o)
SUPPORT_SRCS := $(wildcard tests/support/*.c)
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: all check unit demo deps clean install
.SECONDARY: # keep object files between runs
all: $(BUILD)/ersd $(BUILD)/mock-ers

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(PKG_CFLAGS) $(TEST_CFLAGS) $(MOCK_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libersd.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ersd: $(MAIN_OBJ) $(BUILD)/libersd.a
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/mock-ers: $(MOCK_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(MOCK_LIBS) -lpthread

# The unit tests fail every allocation in turn through these wrappers (tests/support/failalloc.h).
ALLOC_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
$(BUILD)/tests/unit/%: TEST_LDFLAGS = $(ALLOC_WRAP)

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(SUPPORT_OBJS) $(BUILD)/libersd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) $(TEST_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

# test_engine, the sync engine's unit test: the library's objects but daemon/ers.o and
# daemon/ers_writeback.o (the client's endpoints), in whose place a scripted e-RS links
# (tests/fake/fake_ers.c).  An object list, not libersd.a, so that ers.o can never
# be pulled in for a symbol the fake lacks (the link fails instead), and every other object links as it
# is (after ers.c's split, its transfer, pacing and token files too: the fake defines only the client
# and endpoint functions of daemon/ers.h).  The wraps give the test its clocks (fake_clock.c) and a PAS
# connection it can break (fake_odbc.c), beside the unit tests' allocation wraps.
FAKE_OBJS   := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/fake/*.c))
ENGINE_OBJS := $(filter-out $(BUILD)/obj/daemon/ers.o $(BUILD)/obj/daemon/ers_writeback.o,$(LIB_OBJS))
ENGINE_WRAP := -Wl,--wrap=time,--wrap=now_monotonic,--wrap=nanosleep \
               -Wl,--wrap=SQLPrepare,--wrap=SQLExecute,--wrap=SQLExecDirect,--wrap=SQLEndTran \
               -Wl,--wrap=SQLDriverConnect,--wrap=SQLGetDiagRec
# Linked without link-time optimisation: under a distribution's -flto (the RPM's %optflags), the
# linker resolves a call to now_monotonic() inside the LTO unit and --wrap never sees it, so the
# engine would read the real clock (the objects are fat, -ffat-lto-objects, so -fno-lto links them).
$(BUILD)/tests/unit/test_engine: $(BUILD)/obj/tests/unit/test_engine.o $(FAKE_OBJS) $(SUPPORT_OBJS) $(ENGINE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fno-lto $(LDHARDEN) $(ALLOC_WRAP) $(ENGINE_WRAP) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

# The integration tests load this into build/ersd (LD_PRELOAD) to fail one COMMIT with an unknown
# outcome (tests/support/preload/odbc_fault.c).  Built without sanitizers: it only forwards calls.
ODBC_FAULT := $(BUILD)/tests/support/odbc_fault.so
$(ODBC_FAULT): tests/support/preload/odbc_fault.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 $(WARN) -O2 -fPIC -shared -o $@ $< $(shell $(PKG_CONFIG) --cflags odbc) -ldl

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(SUPPORT_OBJS) $(BUILD)/libersd.a | $(ODBC_FAULT)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

# The unit tests, then the integration tests (which start the mock e-RS and run build/ersd), then
# the script tests (tests/check-unit: the systemd unit verifies and rates at most 2.0 exposure;
# tests/check-man: the man pages lint clean and document every key and option; tests/check-deb:
# `make deb` builds, lintian is clean, the .deb holds what it should and accepts its config;
# tests/check-rpm: packaging/ersd.spec builds with rpmbuild and RHEL 9's compiler flags;
# tests/check-links: every relative link and anchor in README.md and docs/ names what exists;
# tests/check-shape: no file in daemon/ or adapters/ over 1,000 lines (split it by concern);
# tests/check-hazards, last and on its own: every test the hazard log docs/safety/hazard-log.md
# names exists and passed in this run, whose output it reads from $(OUTPUT_LOG)).
SCRIPT_TESTS := tests/check-unit tests/check-man tests/check-deb tests/check-rpm tests/check-links \
	tests/check-shape
# `make check` does CHECK_JOBS things at once (CI's two cores): it builds with make -j$(CHECK_JOBS)
# (unless make runs with its own -j), tests/run-tests runs that many test binaries at once
# (ERSD_TEST_JOBS), and two lanes run side by side: the tests, then their ASan run (both mostly
# waiting on ersd, the mock, servers and timeouts), and beside them lint; each run prints as one
# block when it ends (make's --output-sync).  Then valgrind, alone and one binary at a time (the
# tests' deadlines are real time, and valgrind beside a busy lane made them meet one), the
# fuzzers on both cores, and the scan of the output (tests/hardening.mk).  CHECK_JOBS=1 does one
# thing at a time.  It ends with one line adding up every run: the tests, ASan's, valgrind's.
CHECK_JOBS ?= 2
CHECK_MAKE  = $(MAKE) --no-print-directory $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(CHECK_JOBS))
CHECK_TOTALS = $(abspath $(BUILD))/check-totals
check:
	@$(CHECK_MAKE) check-build
	@$(CHECK_MAKE) hardening-build
	@rm -f $(OUTPUT_LOG) $(CHECK_TOTALS)
	@ERSD_TOTALS=$(CHECK_TOTALS) $(CHECK_MAKE) --output-sync=recurse ASAN_AFTER=check-tests \
		check-tests hardening-beside
	@ERSD_TOTALS=$(CHECK_TOTALS) $(MAKE) --no-print-directory hardening-after
	@echo
	@awk '{ p += $$1; f += $$2 } END { printf "check: %d passed, %d failed\n", p, f; exit f > 0 }' \
		$(CHECK_TOTALS)

.PHONY: check-build
check-build: all $(UNIT_BINS) $(INTEG_BINS)
	@:

# The tests of `make check`, without the hardening gates; tests/check-hazards on its own, after
# the others, whose output it reads.  Without this make's flags: check-deb and check-rpm run a
# make of their own, as from the command line.
.PHONY: check-tests
check-tests:
	@unset MAKEFLAGS MFLAGS; export ERSD_BUILD=$(BUILD) ERSD_OUTPUT_LOG=$(OUTPUT_LOG) ERSD_TEST_JOBS=$(CHECK_JOBS); \
		tests/run-tests $(UNIT_BINS) $(INTEG_BINS) $(SCRIPT_TESTS); rc=$$?; \
		tests/run-tests tests/check-hazards && [ $$rc -eq 0 ]

unit: $(UNIT_BINS)
	@ERSD_BUILD=$(BUILD) tests/run-tests $(UNIT_BINS)

# The long crash-and-fault run of issue 5: at least 200 SIGKILLs over 500 referrals with random
# faults from the mock; then the generated worlds of issue 13 (tests/integration/test_world.c) on
# SQLite, PostgreSQL and MariaDB: many seeds, bigger worlds, more kills.  Prints the figures of
# both last.  Not part of `make check` (which runs short ones).  ERSD_WORLD_SLOW=1 adds answers
# that trickle for ever; ERSD_SOAK_SEEDS=N runs N worlds an engine instead of 24 (about two
# minutes each on two cores).
.PHONY: soak
soak: SHELL := /bin/bash
# First the database and machine faults with the 100 MiB document on every engine (make check
# stores it on SQLite only), then the crash run, then the worlds.
soak: all $(BUILD)/tests/integration/test_crash $(BUILD)/tests/integration/test_faults \
		$(BUILD)/tests/integration/test_world
	@ERSD_SOAK=1 ERSD_BUILD=$(BUILD) $(BUILD)/tests/integration/test_faults
	@set -o pipefail; ERSD_SOAK=1 ERSD_BUILD=$(BUILD) $(BUILD)/tests/integration/test_crash | tee $(BUILD)/soak.log; \
	rc=$$?; ERSD_SOAK=1 ERSD_BUILD=$(BUILD) $(BUILD)/tests/integration/test_world | tee -a $(BUILD)/soak.log; \
	rc2=$$?; echo; grep -E '^crash:|^world: (sqlite|postgresql|mariadb|all engines):' $(BUILD)/soak.log; \
	[ $$rc -eq 0 ] && [ $$rc2 -eq 0 ]

demo: all
	@tests/demo $(BUILD)

# `make bench`: ersd's throughput and memory beside this machine's limits, printed (figures, never a
# pass/fail; not part of `make check`).  BENCH_QUICK=1 for a short run.  See tests/bench/bench.c.
.PHONY: bench
$(BUILD)/bench: $(BUILD)/obj/tests/bench/bench.o $(SUPPORT_OBJS) $(BUILD)/libersd.a
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

bench: all $(BUILD)/bench
	@ERSD_BUILD=$(BUILD) $(BUILD)/bench

# Installs the Debian/Ubuntu packages listed in packaging/build-deps (as root, or through sudo).
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)
deps:
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y --no-install-recommends $$(grep -v '^#' packaging/build-deps)

# The program, its man pages, the systemd unit (its ExecStart= pointed at $(PREFIX)/sbin), the
# service user (sysusers.d) and its state directory (tmpfiles.d).  Not the configuration: a
# package installs conf/ersd.conf as a conffile; by hand, see docs/install.md ("By hand").
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR      ?= $(PREFIX)/share/man
install: $(BUILD)/ersd
	install -D -m 0755 $(BUILD)/ersd $(DESTDIR)$(PREFIX)/sbin/ersd
	@mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|^ExecStart=/usr/sbin/ersd |ExecStart=$(PREFIX)/sbin/ersd |' packaging/ersd.service \
		>$(DESTDIR)$(UNITDIR)/ersd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ersd.service
	install -D -m 0644 packaging/ersd.sysusers $(DESTDIR)$(SYSUSERSDIR)/ersd.conf
	install -D -m 0644 packaging/ersd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/ersd.conf
	install -D -m 0644 docs/man/ersd.8 $(DESTDIR)$(MANDIR)/man8/ersd.8
	install -D -m 0644 docs/man/ersd.conf.5 $(DESTDIR)$(MANDIR)/man5/ersd.conf.5

# `make deb`: the Debian source package and the .deb in $(BUILD)/deb, then lintian.
# packaging/debian is the debian/ directory: it stays under packaging/ (DESIGN.md), out of
# the way of a distribution's own debian/, and is put at the top of a copy of the files git
# tracks (as a clean clone has them: `git add` a new file first), where dpkg-buildpackage
# needs it.  DEB_BUILD_OPTIONS=nocheck skips the unit tests.
DEB_VERSION = $(shell dpkg-parsechangelog -l packaging/debian/changelog -S Version)
DEB_ARCH    = $(shell dpkg-architecture -qDEB_HOST_ARCH)
.PHONY: deb
deb:
	@rm -rf $(BUILD)/deb
	@mkdir -p $(BUILD)/deb/ersd-$(DEB_VERSION)
	git ls-files -z -- . ':!packaging/debian' | tar --null -T - -cf - | tar -xf - -C $(BUILD)/deb/ersd-$(DEB_VERSION)
	cp -R packaging/debian $(BUILD)/deb/ersd-$(DEB_VERSION)/debian
	cd $(BUILD)/deb/ersd-$(DEB_VERSION) && dpkg-buildpackage --build=full --no-sign
	lintian --fail-on error,warning --tag-display-limit 0 $(BUILD)/deb/ersd_$(DEB_VERSION)_$(DEB_ARCH).changes
	@echo "deb: $(BUILD)/deb/ersd_$(DEB_VERSION)_$(DEB_ARCH).deb"

# `make rpm`, on RHEL (or wherever rpmbuild and the spec's build requirements are): the source
# tarball of the tracked files, then rpmbuild -ba packaging/ersd.spec under $(BUILD)/rpm.
# RPMBUILD_FLAGS adds rpmbuild options (tests/check-rpm: --nodeps and systemd's macros).
RPM_VERSION = $(shell sed -n 's/^Version: *//p' packaging/ersd.spec)
.PHONY: rpm
rpm:
	@rm -rf $(BUILD)/rpm
	@mkdir -p $(BUILD)/rpm/SOURCES
	git ls-files -z | tar --null -T - --transform 's|^|ersd-$(RPM_VERSION)/|' \
		-czf $(BUILD)/rpm/SOURCES/ersd-$(RPM_VERSION).tar.gz
	cp packaging/ersd.sysusers $(BUILD)/rpm/SOURCES/
	rpmbuild -ba --define '_topdir $(abspath $(BUILD))/rpm' $(RPMBUILD_FLAGS) packaging/ersd.spec
	@echo "rpm: $$(ls $(BUILD)/rpm/RPMS/*/ersd-$(RPM_VERSION)-*.rpm)"

clean:
	rm -rf $(BUILD)

include tests/hardening.mk

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
