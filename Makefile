# Run `make help` for the list. Every target sets up what it needs first (scripts/setup.sh).
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help
help:  ## Show the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: setup
setup:  ## Install Debian packages, the virtualenv and the project (idempotent)
	@scripts/setup.sh

.PHONY: run
run: setup  ## Start everything on embedded defaults with a simulated city (the demo)
	$(VENV)/parking-demo

.PHONY: check
check: setup  ## Lint, type-check and check the import rules (ruff, mypy, import-linter, purity)
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/python -m parking_core.devtools.purity

.PHONY: test
test: check  ## Lint, type-check and run the whole test suite against real services it starts itself
	$(VENV)/pytest

.PHONY: bench
bench: setup  ## Run the benchmarks (prints figures against this machine's raw limits)
	$(VENV)/python -m bench

.PHONY: clean
clean:  ## Delete the embedded data folder ./var (stop `make run` first)
	rm -rf var
