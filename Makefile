# ato_response -- PGXS build.  pg_config is taken from PATH (override: make PG_CONFIG=...).
EXTENSION  = ato_response
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)
MODULE_big = ato_response
OBJS = \
	ato_response.o \
	src/geoip.o \
	src/geoip_json.o \
	src/geoip_load.o \
	src/ingest.o \
	src/special_addresses.o \
	src/owner.o \
	src/contained.o \
	src/summary.o \
	src/event_layout.o \
	src/detect.o \
	src/detect_hunt.o \
	src/detect_kit.o \
	src/targets.o \
	src/arguments.o \
	src/fence.o \
	src/sessions.o \
	src/revoke.o \
	src/workers.o \
	src/incident_worker.o \
	src/detection_worker.o \
	src/import.o \
	src/hooks.o
PGFILEDESC = "ato_response - account-takeover detection and response"

# Install and upgrade scripts live in install/ (sql/ belongs to pg_regress).
# The install script is assembled from install/sections/, one concern a
# file, and committed; "make check-install-script" says whether it is current.
ATO_INSTALL_SQL = install/$(EXTENSION)--$(EXTVERSION).sql
ATO_INSTALL_PIECES = install/header.sql $(sort $(wildcard install/sections/*.sql))
DATA = $(sort $(ATO_INSTALL_SQL) $(wildcard install/$(EXTENSION)--*.sql))

REGRESS = event_store geoip_bundled ingest_bad_input partitions privileges attacks detection summaries detection_kit response alerts late_alerts error_codes roles import evidence incident_record notifications
REGRESS_OPTS = --load-extension=$(EXTENSION) --encoding=UTF8 --no-locale
ISOLATION = summary_refresh overlapping_incidents revocation_outbox revocation_fence partition_maintenance partition_writers evidence_preservation event_layout incident_scope notification_once
ISOLATION_OPTS = --load-extension=$(EXTENSION)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CPPFLAGS = -I$(srcdir)/include -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
# CI (.ci/run) builds with warnings as errors; a packager's build is not stopped by a new compiler's warning.
ifneq ($(ATO_WERROR),)
PG_CPPFLAGS += -Werror
endif
SHLIB_LINK += -lmaxminddb

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: a changed header rebuilds every object.
$(OBJS): $(wildcard include/*.h)

# after PGXS, which sets it empty: the TAP tests' own Perl modules
PROVE_FLAGS += -I $(srcdir)/test/lib

all: $(ATO_INSTALL_SQL)
$(ATO_INSTALL_SQL): $(ATO_INSTALL_PIECES)
	cat $(ATO_INSTALL_PIECES) > $@

.PHONY: check-install-script
check-install-script:
	@cat $(ATO_INSTALL_PIECES) | cmp -s - $(ATO_INSTALL_SQL) || { echo "$(ATO_INSTALL_SQL) is not what install/header.sql and install/sections/ assemble to: run make and commit it" >&2; exit 1; }
	@echo "$(ATO_INSTALL_SQL) is assembled from its $(words $(ATO_INSTALL_PIECES)) pieces"

# The companion extension of a PL/Proxy node (proxy/, SQL only) is built,
# installed and removed with this one.
.PHONY: all-proxy install-proxy uninstall-proxy
all: all-proxy
install: install-proxy
uninstall: uninstall-proxy
all-proxy install-proxy uninstall-proxy:
	$(MAKE) -C proxy PG_CONFIG='$(PG_CONFIG)' $(patsubst %-proxy,%,$@)

# The bundled GeoIP database (fetched, never committed) goes beside the
# extension's SQL scripts, where ato_response.geoip_database points by default.
GEOIP_FILE = geoip/geo-whois-asn-country.mmdb
GEOIP_DIR  = $(datadir)/extension/ato_response

.PHONY: geoip install-geoip
geoip: $(GEOIP_FILE)
$(GEOIP_FILE):
	bash scripts/fetch-geoip.sh geoip

install: install-geoip
install-geoip:
	@if [ -f $(GEOIP_FILE) ]; then \
		$(MKDIR_P) '$(DESTDIR)$(GEOIP_DIR)' && \
		$(INSTALL_DATA) $(GEOIP_FILE) '$(DESTDIR)$(GEOIP_DIR)/geo-whois-asn-country.mmdb.new' && \
		mv -f '$(DESTDIR)$(GEOIP_DIR)/geo-whois-asn-country.mmdb.new' '$(DESTDIR)$(GEOIP_DIR)/geo-whois-asn-country.mmdb' && \
		$(INSTALL_DATA) geoip/NRO_LICENSE '$(DESTDIR)$(GEOIP_DIR)/NRO_LICENSE'; \
	else \
		echo "note: $(GEOIP_FILE) not present; run 'make geoip' to fetch the bundled GeoIP database"; \
	fi

# The control file holds the one version number; META.json must agree.
.PHONY: check-version
check-version:
	@grep -q '"version": "$(EXTVERSION)"' META.json || { echo "META.json does not carry version $(EXTVERSION) of $(EXTENSION).control" >&2; exit 1; }
	@test -f $(ATO_INSTALL_SQL) || { echo "$(ATO_INSTALL_SQL) is missing" >&2; exit 1; }
	@echo "version $(EXTVERSION): control file, META.json and install script agree"
