# `make demo` and `make test` set everything up themselves on a fresh machine.
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
# Python keeps the bytecode of what it imports, so each later process imports the stack in about
# 3.5 s instead of 9 s (measured); an environment that turns that off would pay it in every run.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test lint bench reports validate docs clean-venv

# krsim and what it runs on (`make demo`); the test tools come on top (`make test`): on a new
# machine the demo does not wait for them (measured: 5.0 s against 7.7 s of install)
$(RUN_STAMP): pyproject.toml
	@scripts/setup-venv $(VENV) .
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	@scripts/setup-venv $(VENV) '.[test]'
	@touch $(STAMP)

# the answer, then the report written by the same process (a second one would import it all again)
demo: $(RUN_STAMP)
	$(VENV)/bin/krsim run --report scenarios/mandatory_account.yaml

# the two workers keep both cores busy: each compiles its models in one process (docs/performance.md)
test: $(STAMP)
	KRSIM_COMPILE_JOBS=1 $(PY) -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder

lint: $(STAMP)
	$(VENV)/bin/ruff check simulator validation tests scripts
	$(VENV)/bin/ruff format --check simulator validation tests scripts

bench: $(STAMP)
	$(PY) tests/benchmarks/bench.py
	$(PY) tests/benchmarks/backends.py --only numba,pymc,jax,numpyro --decision
	$(PY) tests/benchmarks/reuse.py
	$(PY) tests/benchmarks/small.py
	$(PY) tests/benchmarks/lengths.py

reports: $(STAMP)
	$(VENV)/bin/krsim report scenarios/mandatory_account.yaml --out reports
	$(VENV)/bin/krsim track scenarios/mandatory_account.yaml scenarios/data/mandatory_account_actuals.csv \
	  --option account_after_booking --report --out reports > /dev/null
	$(VENV)/bin/krsim plan scenarios/mandatory_account.yaml --report --out reports/plan > /dev/null
	$(VENV)/bin/krsim report scenarios/ecommerce_revenue.yaml --out reports
	$(VENV)/bin/krsim report scenarios/booking_q1.yaml --out reports
	$(VENV)/bin/krsim report scenarios/rdv_compte_obligatoire.yaml --out reports
	$(VENV)/bin/krsim archive scenarios/data/example_archive.csv --rules --report --out reports > /dev/null
	$(VENV)/bin/krsim report scenarios/archive_checkout.yaml --out reports
	rm -f reports/portfolio/krsim.sqlite
	$(VENV)/bin/krsim portfolio scenarios/portfolio --week 2026-W49 --workers 2 \
	  --db reports/portfolio/krsim.sqlite --out reports/portfolio > /dev/null

# The docs site (mkdocs.yml, docs/): the generated pages first, then a strict build into
# build/site (a broken link or a page missing from the nav fails). Its tools have their own stamp.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP)
	@scripts/setup-venv $(VENV) '.[test,docs]'
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) scripts/make_reference.py
	$(VENV)/bin/krsim schema > docs/scenario.schema.json.tmp && mv docs/scenario.schema.json.tmp docs/scenario.schema.json
	$(PY) scripts/make_troubleshooting.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

validate: $(STAMP)
	$(PY) -m pytest -q -m slow

clean-venv:
	rm -rf $(VENV)
