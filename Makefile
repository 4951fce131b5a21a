# qfs: developer and operator entry points. `make help` lists them.
SHELL := /bin/bash
BUILD_DIR ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: help setup build test test-unit clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

setup: ## Install missing Debian packages and the Node test tooling (idempotent)
	@scripts/setup.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

build: $(BUILD_DIR)/CMakeCache.txt ## Build libqfs, the services and the tests
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: setup ## Build and run every test through ctest
	@$(MAKE) --no-print-directory build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

test-unit: build ## Run only the unit tests
	cd $(BUILD_DIR) && ctest --output-on-failure -L unit

clean: ## Remove the build tree
	rm -rf $(BUILD_DIR)
