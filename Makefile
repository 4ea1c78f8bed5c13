# The README's two commands: `make lab` and `make test`. Each sets everything up first.
.PHONY: lab test test-quick test-other-engine test-spanish setup engines stop status doctor bench lint clean repeat-labs lock binder-test \
	memory-check classroom-test mutants

VENV   := .venv
PYBIN  := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LABS   := $(sort $(wildcard labs/*.ipynb))
JUPYTER_ARGS ?=# extra `jupyter lab` arguments; loopback, --allow-root and the welcome lab are set by helpers/tools/jupyter.py
PYTEST_ARGS ?=
# The course's python3 kernel (ipykernel without the debugger: lighter), as make lab and Binder have it,
# for the kernels of make bench and make memory-check (nbval's --nbval-current-env uses its own kernel).
export JUPYTER_PATH := $(CURDIR)/helpers/tools/jupyter_data$(if $(JUPYTER_PATH),:$(JUPYTER_PATH))

# `make lab LANG=es`: the Spanish edition (labs/es/, its welcome lab open, JupyterLab's menus in Spanish).
# LANG only when given on make's command line (a locale such as LANG=es_ES.UTF-8 in the environment
# is left to helpers.runtime.i18n); ELASTICACHE_LAB_LANG=es in the environment works too.
# One line per step with its duration, JupyterLab's address last; Jupyter's own log goes to the state
# directory. Ctrl+C stops JupyterLab, its kernels and the lab's services (so does `make stop`).
# scripts/lab.py is `python -m helpers lab` with a first step line before the helpers package loads.
LAB_LANG := $(if $(filter command line,$(origin LANG)),$(LANG),$(ELASTICACHE_LAB_LANG))
lab: setup
	@ELASTICACHE_LAB_LANG=$(LAB_LANG) $(PYBIN) scripts/lab.py $(JUPYTER_ARGS)

# Labs that also run on the other key-value engine: the basics, replication and failover, sharding,
# and the local ElastiCache API (which starts the engine each request names).
OTHER_ENGINE_LABS := labs/00_welcome.ipynb labs/01_redis_data_structures.ipynb \
	labs/09_replication_and_failover.ipynb labs/10_scaling_and_sharding.ipynb labs/13_control_plane.ipynb

# Unit tests (two workers, each with its own state directory), then every notebook twice in one
# state directory against the same services: two rounds, each in its own shuffled order (SEED, printed;
# `make test SEED=N` runs the same order again), with every core LOAD% busy during the second round
# (helpers/tools/cpuload.py: Debian's stress-ng where installed; LOAD=0 turns it off). After each
# notebook and each test module, no engine process of the state directory may be missing from
# `helpers status` (conftest.py). Everything is stopped at the end.
# The notebooks run on the default key-value engine (Valkey where a valkey-server is installed, else
# Redis OSS: see helpers.runtime.engines.default_engine_name); ELASTICACHE_LAB_ENGINE=valkey or =redis chooses.
# Then a few labs run on the other.
ifndef SEED
SEED := $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
endif
LOAD ?= 50
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:randomly
test: setup
	@echo "make test: labs in an order shuffled with SEED=$(SEED), the second round with every core $(LOAD)% busy"
	@status=0; \
	$(PYBIN) -m pytest tests -n 2 --dist loadfile -p no:randomly --durations=15 $(PYTEST_ARGS) || status=1; \
	$(PYBIN) -m pytest $(LABS) $(LABS) --keep-duplicates $(NBVAL) --lab-seed $(SEED) --cpu-load $(LOAD) \
		--cpu-load-round 2 --durations=15 $(PYTEST_ARGS) || status=1; \
	$(MAKE) --no-print-directory test-other-engine SEED=$(SEED) || status=1; \
	$(MAKE) --no-print-directory test-spanish SEED=$(SEED) || status=1; \
	[ $$status -eq 0 ] || echo "make test failed; SEED=$(SEED) runs the labs in the same order again"; \
	exit $$status

# The quick tier for a developer's loop (a few minutes): the unit tests that start no replication group,
# cluster, serverless cache or browser, and lab 00. `make test` runs everything.
test-quick: setup
	$(PYBIN) -m pytest tests -n 3 --dist loadfile -p no:randomly -m "not slow and not topology" -q $(PYTEST_ARGS)
	$(PYBIN) -m pytest labs/00_welcome.ipynb $(NBVAL) -q $(PYTEST_ARGS)

# Every lab N times in a row (default 10), in one run against the same services, as `make test` runs
# them: the proof that each measured claim holds every time. Results: docs/reliability.md.
# REPEAT_LOAD=P keeps every core P% busy the whole time; each round in its own order from SEED.
N ?= 10
REPEAT_LOAD ?= 0
repeat-labs: setup
	$(PYBIN) -m pytest $(foreach i,$(shell seq $(N)),$(LABS)) --keep-duplicates $(NBVAL) --lab-seed $(SEED) \
		--cpu-load $(REPEAT_LOAD) -q $(PYTEST_ARGS)

# OTHER_ENGINE_LABS on the engine `make test` does not use (Redis OSS when it uses Valkey, and back).
test-other-engine: setup
	@other=$$($(PYBIN) -c 'from helpers.runtime import engines; print({"valkey": "redis", "redis": "valkey"}[engines.selected_engine_name()])') || exit 1; \
	if ! ELASTICACHE_LAB_ENGINE=$$other $(PYBIN) -c 'from helpers.runtime import engines; engines.kv_engine()' 2>/dev/null; then \
		echo "test-other-engine: $$other is not installed here; skipped (python -m helpers doctor says how to install it)."; \
		exit 0; fi; \
	echo "Labs on the other engine ($$other): $(OTHER_ENGINE_LABS)"; \
	ELASTICACHE_LAB_ENGINE=$$other $(PYBIN) -m pytest $(OTHER_ENGINE_LABS) $(NBVAL) --lab-seed $(SEED) $(PYTEST_ARGS)

# A few labs of the Spanish edition (labs/es/, built from the English ones: docs/translating.md), those
# that exist. nbval starts each kernel in the notebook's folder, whose .lab-lang marker makes it answer in
# Spanish; the code cells are the English labs', which run above.
SPANISH_LABS := $(wildcard labs/es/00_welcome.ipynb labs/es/02_memcached_essentials.ipynb \
	labs/es/08_persistence_and_backups.ipynb)
test-spanish: setup
	@if [ -z "$(SPANISH_LABS)" ]; then echo "test-spanish: no Spanish labs built yet; skipped."; exit 0; fi; \
	echo "Labs of the Spanish edition: $(SPANISH_LABS)"; \
	$(PYBIN) -m pytest $(SPANISH_LABS) $(NBVAL) --lab-seed $(SEED) $(PYTEST_ARGS)

setup: engines $(STAMP)

engines:
	@sh scripts/setup-engines.sh

$(STAMP): pyproject.toml requirements.lock scripts/setup-python.sh scripts/setup_python.py
	@sh scripts/setup-python.sh

# requirements.lock from the current .venv (after changing pyproject.toml's dependencies and `make setup`).
lock: $(STAMP)
	$(PYBIN) -m helpers.tools.lockfile

# Binder as a learner gets it: binder/requirements.txt in a fresh venv, as a non-root user, then lab 00
# and a JupyterLab terminal through binder/start. Downloads every package: a few minutes.
binder-test: setup
	ELASTICACHE_LAB_BINDER_TEST=1 $(PYBIN) -m pytest tests/test_binder.py -p no:randomly -v $(PYTEST_ARGS)

# Mutation testing of the checkers: mutants of every reference answer that is code, each judged by its
# checker; prints K/N rejected per lab and in all (equivalent mutants: data/mutants-equivalent.json). A few minutes.
# make test holds the floor (tests/test_mutants.py: at least 90% of at least 200 rejected).
mutants: setup
	$(PYBIN) -m helpers.tools.mutants $(MUTANTS_ARGS)

# Figures for the instructor's guide: prints a table, writes artifacts/bench.json; never fails on a slow machine.
bench: setup
	$(PYBIN) -m helpers.tools.bench $(BENCH_ARGS)

# The whole course as a learner runs it, every kernel left open, inside Binder's 2 GiB (a memory
# cgroup when run as root; otherwise measured only). Peak, memory per component, OOM kills, failed
# labs; writes artifacts/coursemem.json, which `make bench` prints. About 15-20 minutes.
memory-check: setup
	$(PYBIN) -m helpers.tools.coursemem $(MEMCHECK_ARGS)

stop status doctor: $(STAMP)
	$(PYBIN) -m helpers $@

lint: $(STAMP)
	$(VENV)/bin/ruff check helpers tests

clean: $(STAMP)
	-$(PYBIN) -m helpers stop
	rm -rf $(VENV)

# A class on one server (docs/classroom.md), as root on Linux: the isolation test (a second Unix user
# cannot reach a learner's Redis, Memcached or AWS endpoint, nor read their secrets), then JupyterHub
# from PyPI with configurable-http-proxy from npm and 4 throwaway users running labs 00 and 09 at
# once through the hub; prints the capacity figure (artifacts/classroom.json). About 5 minutes; the
# first run also installs the classroom's venv (CLASSROOM_VENV, about 10 minutes) and proxy (CHP_PREFIX).
CLASSROOM_VENV ?= /tmp/elasticache-lab-classroom-venv
CHP_PREFIX ?= /tmp/elasticache-lab-chp
classroom-test: setup
	@[ "$$(id -u)" -eq 0 ] || { echo "classroom-test: run as root (it creates Unix users and network namespaces)" >&2; exit 2; }
	@sh scripts/setup-classroom.sh "$(CLASSROOM_VENV)" "$(CHP_PREFIX)"
	ELASTICACHE_LAB_CLASSROOM_VENV=$(CLASSROOM_VENV) \
	ELASTICACHE_LAB_CHP=$(CHP_PREFIX)/node_modules/.bin/configurable-http-proxy \
		timeout 900 $(PYBIN) -m pytest tests/test_isolation.py tests/test_classroom.py -p no:randomly -v -s $(PYTEST_ARGS)
