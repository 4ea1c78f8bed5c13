# The README's two commands: `make lab` and `make test`. Each sets everything up first.
.PHONY: lab test test-other-engine setup engines stop status doctor bench lint clean

VENV   := .venv
PYBIN  := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LABS   := $(sort $(wildcard labs/*.ipynb))
REVERSED := $(shell printf '%s\n' $(LABS) | sort -r)
JUPYTER_ARGS ?=# extra `jupyter lab` arguments; loopback and --allow-root are set by helpers/jupyter.py
PYTEST_ARGS ?=

lab: setup
	$(PYBIN) -m helpers lab -- $(JUPYTER_ARGS)

# Labs that also run on the other key-value engine: the basics, replication and failover,
# sharding, and the control plane (about a minute together).
OTHER_ENGINE_LABS := labs/00_welcome.ipynb labs/01_redis_data_structures.ipynb \
	labs/09_replication_and_failover.ipynb labs/10_scaling_and_sharding.ipynb labs/13_control_plane.ipynb

# Unit tests (two workers, each with its own state directory), then every notebook in order and
# again in reverse order, in one run against the same services; everything is stopped at the end.
# The notebooks run on the default key-value engine (Valkey where a Valkey binary is installed,
# else Redis OSS); ELASTICACHE_LAB_ENGINE=valkey or =redis chooses. Then a few labs run on the other.
test: setup
	@status=0; \
	$(PYBIN) -m pytest tests -n 2 --dist loadfile -p no:randomly --durations=15 $(PYTEST_ARGS) || status=1; \
	$(PYBIN) -m pytest $(LABS) $(REVERSED) --keep-duplicates --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 -p no:randomly --durations=15 $(PYTEST_ARGS) || status=1; \
	$(MAKE) --no-print-directory test-other-engine || status=1; \
	exit $$status

# OTHER_ENGINE_LABS on the engine `make test` does not use (Redis OSS when it uses Valkey, and back).
test-other-engine: setup
	@other=$$($(PYBIN) -c 'from helpers.runtime import engines; print({"valkey": "redis", "redis": "valkey"}[engines.selected_engine_name()])') || exit 1; \
	if ! ELASTICACHE_LAB_ENGINE=$$other $(PYBIN) -c 'from helpers.runtime import engines; engines.kv_engine()' 2>/dev/null; then \
		echo "test-other-engine: $$other is not installed here; skipped (python -m helpers doctor says how to install it)."; \
		exit 0; fi; \
	echo "Labs on the other engine ($$other): $(OTHER_ENGINE_LABS)"; \
	ELASTICACHE_LAB_ENGINE=$$other $(PYBIN) -m pytest $(OTHER_ENGINE_LABS) --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 -p no:randomly $(PYTEST_ARGS)

setup: engines $(STAMP)

engines:
	@sh scripts/setup-engines.sh

$(STAMP): pyproject.toml scripts/setup-python.sh
	@sh scripts/setup-python.sh

# Figures for the instructor's guide: prints a table, writes artifacts/bench.json; never fails on a slow machine.
bench: setup
	$(PYBIN) -m helpers.tools.bench $(BENCH_ARGS)

stop status doctor: $(STAMP)
	$(PYBIN) -m helpers $@

lint: $(STAMP)
	$(VENV)/bin/ruff check helpers tests

clean: $(STAMP)
	-$(PYBIN) -m helpers stop
	rm -rf $(VENV)
