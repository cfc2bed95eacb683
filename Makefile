# Two entry points that work on a machine with only python3 and make:
#   make demo   sets everything up and runs the demo against the local sandbox
#   make test   sets everything up and runs lint, types and the whole test suite (every tier)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: install demo test lint typecheck judges unit e2e system sandbox bench bench-quick dist constraints clean

# The tiers (the folder is the tier: tests/unit, tests/e2e, tests/system): unit opens no socket; e2e drives our server in-process
# against the sandbox; system runs processes, judges and real servers. Most of e2e and system waits (sandbox
# tasks, subprocesses, npm judges), so they run in parallel workers, more than the cores, each taking whole
# files (module-scoped fixtures, such as the Inspector's recorded session, run once). PYTEST_WORKERS=0: serial.
# Files go out in collection order, where tests/conftest.py puts the longest first (LONGEST_FILES), not
# xdist's default of the most tests first, which left the long files of a few tests to the end of the run.
PYTEST_WORKERS ?= 4
# Each worker first imports every test file, and pytest rewrites the asserts of each as it does: about 7 s of
# CPU a worker when nothing is cached, 3 s once the rewritten files are in the git-ignored __pycache__ dirs.
# So a parallel run starts with one collection that writes them (PRIME), and the tests run with bytecode
# caching on even where the shell sets PYTHONDONTWRITEBYTECODE, which would forbid pytest that cache and
# make every Python process of the suite (servers, CLIs, examples) compile databar_mcp again.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -rs
PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder)
PRIME := $(if $(filter 0,$(PYTEST_WORKERS)),true,$(PYTEST) -p no:xdist --collect-only > /dev/null 2>&1 || true)

# The demo needs only the package; tests and tools add the dev extras on top.
# Versions come from constraints.txt, as in the Dockerfile, so CI, images and checkouts install the same.
$(RUNTIME_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Re-pin after a dependency change: a fresh venv with the dev extras, frozen.
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/python -m pip install --quiet '.[dev]'
	{ head -2 constraints.txt; .constraints-venv/bin/pip freeze --exclude-editable | grep -v '^databar-mcp'; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .constraints-venv

install: $(STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/databar-mcp demo --output examples/out/leads_enriched.csv

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/pyright

unit: $(STAMP)
	$(PYTEST) -m unit

e2e: $(STAMP)
	@$(PRIME)
	$(PYTEST) -m e2e $(PARALLEL)

system: judges
	@$(PRIME)
	$(PYTEST) -m system $(PARALLEL)

# External judges for the tests (the MCP Inspector CLI, the MCP conformance suite): npm packages installed
# into the git-ignored .cache/judges/ with the venv's Node, only when missing (see tests/judges.py).
judges: $(STAMP)
	$(BIN)/python -m tests.judges

# Every tier in one parallel run (one collection, and the workers balance across tiers). pyright runs beside
# the tests (much of the suite waits on sockets and subprocesses, which leaves it CPU); its report follows
# theirs, and either failing fails the target.
test: lint judges
	@$(BIN)/pyright > $(VENV)/pyright.log 2>&1 & types=$$!; \
	$(PRIME); \
	$(PYTEST) $(PARALLEL); tests=$$?; \
	wait $$types; typed=$$?; \
	echo "pyright:"; cat $(VENV)/pyright.log; \
	test $$tests -eq 0 && test $$typed -eq 0

sandbox: $(STAMP)
	$(BIN)/databar-mcp sandbox --port 8765

# Benchmarks against the sandbox (issue 7): every scenario in one run; writes bench/results/latest.{md,json,png}.
# Installs Databar's own MCP server from npm into the git-ignored bench/vendor/ when node and npm are present.
bench: $(STAMP)
	$(BIN)/python -m bench

# The seconds-long variant (small sizes, no npm install); results go to bench/results/quick.tmp/ or BENCH_OUT.
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick $(if $(BENCH_OUT),--out $(BENCH_OUT))

# The wheel and sdist that would be published, built in an isolated environment by `build`.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache examples/out dist .cache
