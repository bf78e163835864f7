# Thin wrapper for the README commands; the build itself is meson.
BUILD ?= build
BUILD_SAN ?= build-san
ARGS ?=

PREFIX ?= /usr/local

.PHONY: all setup build build-san install demo test soak unit bench bench-memory bench-disk bench-shared bench-orch bench-scenario bench-rounds bench-codec bench-tls bench-tls-migration clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) >/dev/null

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

build: setup $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null

build-san: setup $(BUILD_SAN)/build.ninja
	@ninja -C $(BUILD_SAN) >/dev/null

# PREFIX/lib/fastmig/bin (the programs), PREFIX/bin/fastmig,
# PREFIX/sbin/fastmigd and fastmig-orchd, their systemd units in
# PREFIX/lib/systemd/system, and /etc/fastmig/fastmigd.env and
# fastmig-orchd.env when there are none (docs/FLEET.md, docs/ORCHESTRATOR.md). DESTDIR
# stages it elsewhere. `make setup' (run by build) brings CRIU 4.2.1 where
# the distribution's is older.
install: build
	@meson configure $(BUILD) -Dprefix=$(PREFIX) >/dev/null
	@ninja -C $(BUILD) >/dev/null
	@meson install -C $(BUILD) --no-rebuild --quiet
	@[ -e "$(DESTDIR)/etc/fastmig/fastmigd.env" ] || install -D -m 0644 dist/fastmigd.env "$(DESTDIR)/etc/fastmig/fastmigd.env"
	@[ -e "$(DESTDIR)/etc/fastmig/fastmig-orchd.env" ] || install -D -m 0644 dist/fastmig-orchd.env "$(DESTDIR)/etc/fastmig/fastmig-orchd.env"
	@echo "installed under $(DESTDIR)$(PREFIX); edit $(DESTDIR)/etc/fastmig/fastmigd.env, then: systemctl enable --now fastmigd"

demo: build
	@$(BUILD)/fastmig demo $(ARGS)

test: build build-san
	@bash tests/run.sh

# 200 migrations with faults mixed in; nothing may accumulate (docs/RECOVERY.md)
soak: build
	@FASTMIG_BUILD=$(CURDIR)/$(BUILD) bash tests/soak.sh $(ARGS)

bench: build
	@$(BUILD)/fastmig bench $(ARGS)

bench-memory: build
	@$(BUILD)/fastmig bench-memory $(ARGS)

bench-disk: build
	@$(BUILD)/fastmig bench-disk $(ARGS)

bench-shared: build
	@$(BUILD)/fastmig bench-shared $(ARGS)

bench-orch: build
	@$(BUILD)/fastmig bench-orch $(ARGS)

bench-scenario: build
	@bash bench/scenarios.sh

bench-rounds: build
	@bash bench/precopy_rounds.sh

bench-codec: build
	@$(BUILD)/fm-codec-speed $(ARGS)

bench-tls: build
	@$(BUILD)/fm-tls-speed $(ARGS)

# the same migrations with TLS and with a benchmark build whose data travels
# in clear after the handshake (build-clear, -Dbench_cleartext=true)
build-clear/build.ninja:
	meson setup build-clear -Dbench_cleartext=true >/dev/null

bench-tls-migration: build build-clear/build.ninja
	@ninja -C build-clear >/dev/null
	@bash bench/tls_migration.sh

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-clear
