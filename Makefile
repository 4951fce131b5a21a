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

# Local stack: nats-server, redis-server and the AWS and Qualys simulators (tools/stack).
STACK_DIR ?= .stack

.PHONY: dev stack-up stack-down

dev: ## Run the local stack in the foreground until Ctrl-C, then stop it
	@tools/stack up --dir $(STACK_DIR)
	@trap 'echo; tools/stack down --dir $(STACK_DIR); exit 0' INT TERM; \
	echo; \
	echo "Use it from another terminal:"; \
	echo "  . $(STACK_DIR)/env                        # QFS_*, AWS_* and QUALYS_* for the services"; \
	echo "  build/bin/qfs-<service>             # run a service against the stack (make build first)"; \
	echo "  tools/stack --dir $(STACK_DIR) status     # processes, pids and ports"; \
	echo "  ls $(STACK_DIR)/logs/                     # nats, redis, aws-sim, qualys-sim logs"; \
	echo "Watching the bus with 'nats sub \"qfs.>\"' needs the nats CLI, which Debian does not package;"; \
	echo "'qfsctl tail' will do the same once qfsctl exists."; \
	echo; \
	echo "Press Ctrl-C to stop the stack."; \
	while sleep 2; do \
	  tools/stack --dir $(STACK_DIR) status >/dev/null 2>&1 || { \
	    echo "make dev: part of the stack stopped:"; tools/stack --dir $(STACK_DIR) status; \
	    tools/stack down --dir $(STACK_DIR); exit 1; }; \
	done

stack-up: ## Start the local stack in the background (environment in .stack/env)
	@tools/stack up --dir $(STACK_DIR)

stack-down: ## Stop the local stack and remove .stack
	@tools/stack down --dir $(STACK_DIR)
