# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The sandbox console: fake Heroku with demo apps, SQLite, no accounts.
# `make demo ARGS='-c "/deploy status demo"'` runs lines and exits.
# Exit 141 is the console stopped by a closed pipe (`make demo | head`): not make's error.
demo: $(STAMP)
	$(BIN)/python -m bot console --sandbox $(ARGS) || test $$? -eq 141

test: $(STAMP) lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/ack_latency.py --work-baseline
	$(BIN)/python benchmarks/drain.py
	$(BIN)/python -m benchmarks.drain_e2e
	$(BIN)/python -m benchmarks.replies
	$(BIN)/python -m benchmarks.chart
	$(BIN)/python -m benchmarks.reconcile_scan
	$(BIN)/python -m benchmarks.status_reads

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache deploybot*.sqlite3*

# Autoscaling policies on ../shared/traces/*.csv through the dyno simulator, with the goal
# checked; `make bench-autoscale ARGS='--output FILE'` also writes the table into FILE.
.PHONY: bench-autoscale
bench-autoscale: $(STAMP)
	$(BIN)/python -m benchmarks.autoscale $(ARGS)

# How far that goal can be reached on the synthetic shapes: the cheapest run of a policy
# that knows each minute's traffic level in advance, within the best peer's minutes.
.PHONY: bench-autoscale-bound
bench-autoscale-bound: $(STAMP)
	$(BIN)/python -m benchmarks.autoscale_bound $(ARGS)

# The worker's jobs over a synthetic fleet of 10, 100 and 1,000 autoscaled, drained apps in
# PostgreSQL (TEST_DATABASE_URL, default the local server), with the goals checked;
# `make bench-scale ARGS='--sizes 10,100'` for a quicker run.
.PHONY: bench-scale
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale $(ARGS)

# The closed-loop proof: a trace on a compressed clock through the Procfile's web and worker
# processes on PostgreSQL (TEST_DATABASE_URL, default the local server), the fake Heroku's
# dyno model and router, beside `deploybot simulate` on the same trace and settings;
# `make bench-closed-loop ARGS='--trace all --minutes 60 --detail'` for more.
.PHONY: bench-closed-loop
bench-closed-loop: $(STAMP)
	$(BIN)/python -m benchmarks.closed_loop $(ARGS)
