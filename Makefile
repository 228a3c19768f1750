# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run check test smoke bench lint format clean

# The game `make run` serves: made from the starter game (content/) on the first run,
# so that what a newcomer edits there never changes the starter the tests play.
GAME := var/game
# Flags for the server, e.g. make run ARGS="--port 5000".
ARGS ?=

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(GAME)/hotmud.toml: | $(STAMP)
	@mkdir -p $(dir $(GAME))
	@$(BIN)/hotmud new $(GAME) >/dev/null

run: $(STAMP) $(GAME)/hotmud.toml
	@$(BIN)/hotmud run --game $(GAME) $(ARGS)

check: $(STAMP) $(GAME)/hotmud.toml
	@$(BIN)/hotmud check --game $(GAME)

# Tests run in four worker processes (pytest-xdist) on two cores: most wait on sockets,
# timers and child processes, not the CPU (at two workers the CPU was idle half the run);
# an idle worker takes tests still queued for the others (worksteal), slow ones go first.
# A test that hangs ends its worker; its name and stacks are in var/test-hang-*.txt.
test: $(STAMP)
	@rm -f var/test-hang*.txt
	@$(BIN)/python -m pytest -q -n 4 --dist worksteal; status=$$?; \
	for f in var/test-hang*.txt; do if [ -s "$$f" ]; then cat "$$f" >&2; fi; done; exit $$status

smoke: $(STAMP)
	$(BIN)/python scripts/smoke

bench: $(STAMP)
	$(BIN)/python scripts/bench_reload.py
	$(BIN)/python scripts/bench_load.py
	$(BIN)/python scripts/bench_hostile.py
	$(BIN)/python scripts/bench_guard.py
	$(BIN)/python scripts/bench_login.py
	$(BIN)/python scripts/bench_restart.py
	$(BIN)/python scripts/bench_play.py --players 100,500 --seconds 15
	$(BIN)/python scripts/bench_play.py --dummyrunner --seconds 20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Keeps the game in $(GAME): it is what a newcomer edited and played, not a build product.
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	@if [ -d var ]; then find var -mindepth 1 -maxdepth 1 ! -path $(GAME) -exec rm -rf {} +; fi
