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
	echo "build/bin/qfsctl tail does the same (. $(STACK_DIR)/env first)."; \
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

# ---- Deploying to AWS and the container image (README "Deploying to AWS"). The work is done by
# deploy/qfs-deploy.sh, which reads the parameters from the environment: make passes the ones given
# on its command line (AWS_REGION=... QUALYS_POD=... VpcId=...). DRY_RUN=1 prints the aws and docker
# commands instead of running them. Qualys credentials are read from QUALYS_API_TOKEN or
# QUALYS_USERNAME/QUALYS_PASSWORD and only ever written to private files, never to a command line.
DEPLOY := deploy/qfs-deploy.sh

.PHONY: deploy deploy-region update destroy destroy-region deploy-hub deploy-spoke \
        deploy-spoke-stackset logs status test-event get-qualys-info list-registries image push-image \
        help-deploy

help-deploy: ## The deployment targets' parameters
	@$(DEPLOY) usage

deploy: ## Deploy qfs into one account (AWS_REGION QUALYS_POD IMAGE_URI|ECR_REPO VpcId SubnetIds + credentials)
	@$(DEPLOY) deploy

deploy-region: ## Forward other Regions of the account to the deployed qfs (REGION=a,b)
	@$(DEPLOY) deploy-region

update: ## Rebuild and push the image (ECR_REPO), roll it out and force a new deployment
	@$(DEPLOY) update

destroy: ## Delete the qfs stack (STACK_NAME, AWS_REGION)
	@$(DEPLOY) destroy

destroy-region: ## Delete the regional forwarders (REGION=a,b)
	@$(DEPLOY) destroy-region

deploy-hub: ## Deploy the hub in the security account (also OrganizationId)
	@$(DEPLOY) deploy-hub

deploy-spoke: ## Deploy a spoke in this member account (CentralEventBusArn SecurityAccountId)
	@$(DEPLOY) deploy-spoke

deploy-spoke-stackset: ## Deploy the spokes to OrgUnitIds by StackSet (REGION=a,b for several Regions)
	@$(DEPLOY) deploy-spoke-stackset

logs: ## Tail the services' logs (SERVICE=parser for one, SINCE=1h, FOLLOW=0)
	@$(DEPLOY) logs

status: ## Stack, ECS service and queue depths
	@$(DEPLOY) status

test-event: ## Send a sample deploy event (of the qfs image itself) into the deployed queue
	@$(DEPLOY) test-event

get-qualys-info: ## The Qualys AWS account and external id the ECR role trusts, and the connectors
	@$(DEPLOY) get-qualys-info

list-registries: ## The registries Qualys knows (QUALYS_POD + credentials)
	@$(DEPLOY) list-registries

image: ## Build the container image for linux/amd64 and linux/arm64 (docker buildx; PLATFORMS=...)
	@$(DEPLOY) image

push-image: ## Build and push the image to ECR_REPO:IMAGE_TAG (both platforms)
	@$(DEPLOY) push-image

.PHONY: demo
demo: setup ## The whole pipeline on this machine in about a minute, against the simulators
	@$(MAKE) --no-print-directory build >/dev/null
	@QFS_BIN_DIR=$(abspath $(BUILD_DIR))/bin scripts/demo.sh

# ---- Proof under fire (issue 8): the full chaos run and the benchmarks. The CI-sized chaos run
# is part of `make test` (integration.chaos); these two take several minutes each.
.PHONY: chaos bench

chaos: setup ## Full chaos run: 2,000 events, 300 images, services SIGKILLed, nats-server restarted
	@$(MAKE) --no-print-directory build
	QFS_CHAOS_FULL=1 QFS_SOURCE_DIR=$(CURDIR) QFS_BIN_DIR=$(abspath $(BUILD_DIR))/bin \
	  $(BUILD_DIR)/tests/it_chaos

bench: setup ## Benchmarks on the local stack: a table, and bench/results/latest.json (BENCH_FLAGS=...)
	@$(MAKE) --no-print-directory build
	bench/run --build-dir $(BUILD_DIR) $(BENCH_FLAGS)

# ---- Fuzzing (tests/fuzz/, STYLE.md "Tests"): every libFuzzer target with ASan and UBSan, built
# with clang in FUZZ_BUILD_DIR, runs SECONDS seconds on a scratch copy of its corpus
# (tests/fuzz/corpus/<target>/ stays as committed). A crash, leak, timeout or undefined behaviour
# (UBSan halts on its first report) fails the run and leaves the reproducer in
# FUZZ_BUILD_DIR/fuzz-run/<target>/artifacts/: minimise it (-minimize_crash=1), fix the decoder and
# add the file to the target's corpus.
FUZZ_BUILD_DIR ?= build-fuzz
SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz

fuzz: ## Build the fuzz targets with clang and run each for SECONDS (default 60); fails on any crash
	@command -v clang >/dev/null || { echo "make fuzz: clang is needed"; exit 1; }
	cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_C_COMPILER=clang -DQFS_FUZZ=ON
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@fail=0; \
	for t in $(FUZZ_TARGETS); do \
	  run=$(FUZZ_BUILD_DIR)/fuzz-run/$$t; \
	  rm -rf "$$run"; mkdir -p "$$run/corpus" "$$run/artifacts"; \
	  cp tests/fuzz/corpus/$$t/* "$$run/corpus/"; \
	  printf 'fuzz_%s: %s s on a copy of tests/fuzz/corpus/%s\n' "$$t" "$(SECONDS)" "$$t"; \
	  if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	     $(FUZZ_BUILD_DIR)/fuzz/fuzz_$$t -max_total_time=$(SECONDS) -print_final_stats=1 \
	       -artifact_prefix="$$run/artifacts/" "$$run/corpus" >"$$run/log" 2>&1; then \
	    sed -n 's/^stat::number_of_executed_units: */  executions: /p' "$$run/log"; \
	  else \
	    tail -n 40 "$$run/log"; \
	    printf 'fuzz_%s: FAILED; log %s/log, reproducer in %s/artifacts/\n' "$$t" "$$run" "$$run"; \
	    fail=1; \
	  fi; \
	done; \
	exit $$fail
