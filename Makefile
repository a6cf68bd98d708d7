# zij: `make serve` shows the site, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1

.PHONY: install serve site test bench bench-tasks bench-site validate clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/mkdocs serve --strict -a 127.0.0.1:8000

site: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

validate: $(STAMP)
	$(VENV)/bin/zij-canon validate
	$(VENV)/bin/zij-canon check-math

test: $(STAMP)
	$(VENV)/bin/zij-canon validate
	$(PY) -m pytest -q -n auto --dist worksteal --durations=30

bench: $(STAMP)
	$(PY) -m zij._bench $(ARGS)
	$(PY) -m zij.bench.state

bench-tasks: $(STAMP)
	$(PY) -m zij.bench $(ARGS)

bench-site: $(STAMP)
	$(PY) -m zij_canon.bench --runs 5

clean:
	rm -rf build .pytest_cache
