# `make demo` and `make test` set everything up themselves on a fresh machine.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench reports validate clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv \
	  && $(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[test]' \
	  || $(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/krsim run scenarios/mandatory_account.yaml
	$(VENV)/bin/krsim report scenarios/mandatory_account.yaml

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check simulator validation tests scripts
	$(VENV)/bin/ruff format --check simulator validation tests scripts

bench: $(STAMP)
	$(PY) tests/benchmarks/bench.py

reports: $(STAMP)
	$(VENV)/bin/krsim report scenarios/mandatory_account.yaml --out reports
	$(VENV)/bin/krsim track scenarios/mandatory_account.yaml scenarios/data/mandatory_account_actuals.csv \
	  --option account_after_booking --report --out reports > /dev/null
	$(VENV)/bin/krsim plan scenarios/mandatory_account.yaml --report --out reports/plan > /dev/null
	$(VENV)/bin/krsim report scenarios/ecommerce_revenue.yaml --out reports
	$(VENV)/bin/krsim report scenarios/booking_q1.yaml --out reports

validate: $(STAMP)
	$(PY) -m pytest -q -m slow

clean-venv:
	rm -rf $(VENV)
