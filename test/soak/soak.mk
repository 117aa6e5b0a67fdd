# Soak test (issue 7 "Soak"), opt-in:
#   make soak [SOAK_SECONDS=60] [SOAK_ARGS="--seed N"]
# Builds the ASan+UBSan server (build/asan/roomcast) and the release load generator
# (build/release/roomcast-bench) in their own sub-makes, so objects never mix whatever SANITIZE says,
# then runs scripts/soak.sh (test/soak/soak.py: load, RSS bound, /health + /metrics, exit 0, no report).
# Included by the top-level Makefile after its own rules (it uses the setup target).

SOAK_SECONDS ?= 60
SOAK_ARGS ?=

.PHONY: soak
soak: setup
	@$(MAKE) --no-print-directory SANITIZE=address build/asan/roomcast
	@$(MAKE) --no-print-directory SANITIZE= build/release/roomcast-bench
	@SOAK_SECONDS=$(SOAK_SECONDS) scripts/soak.sh $(SOAK_ARGS)
