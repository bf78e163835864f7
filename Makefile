# Thin wrapper for the README commands; the build itself is meson.
BUILD ?= build
BUILD_SAN ?= build-san
ARGS ?=

.PHONY: all setup build build-san demo test unit bench bench-memory bench-disk bench-shared bench-rounds bench-codec bench-tls clean

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

demo: build
	@$(BUILD)/fastmig demo $(ARGS)

test: build build-san
	@bash tests/run.sh

bench: build
	@$(BUILD)/fastmig bench $(ARGS)

bench-memory: build
	@$(BUILD)/fastmig bench-memory $(ARGS)

bench-disk: build
	@$(BUILD)/fastmig bench-disk $(ARGS)

bench-shared: build
	@$(BUILD)/fastmig bench-shared $(ARGS)

bench-rounds: build
	@bash bench/precopy_rounds.sh

bench-codec: build
	@$(BUILD)/fm-codec-speed $(ARGS)

bench-tls: build
	@$(BUILD)/fm-tls-speed $(ARGS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
