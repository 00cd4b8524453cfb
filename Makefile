# ssu: the two commands of the README (`make run`, `make test`) do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: sync tools run test test-faults test-cluster test-bench lint contracts broker-definitions clean help browser fonts

help:
	@echo "make run        - the five services (portal at http://127.0.0.1:8085/) with demo data"
	@echo "make test       - the whole test suite (real PostgreSQL and RabbitMQ)"
	@echo "make test-faults - fault tests: broker and database restarts, kills, duplicates"
	@echo "make test-cluster - two replicas per service on a three-node RabbitMQ cluster, with faults"
	@echo "make test-bench - the online path beside a bare FastAPI twin (wrk); fails under 0.5x"
	@echo "make lint       - ruff and mypy"
	@echo "make contracts  - regenerate contracts/schemas and contracts/asyncapi.yaml"
	@echo "make broker-definitions - regenerate the broker users and queues of deploy/ (compose, k8s)"

# uv is bootstrapped from PyPI when missing; the lock file pins every dependency.
$(VENV)/.synced: uv.lock pyproject.toml */pyproject.toml */*/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --all-packages --frozen --python $(PYTHON)
	@touch $@

sync: $(VENV)/.synced

# Debian packages the portal needs: DejaVu for its PDF certificates, Chromium for its browser
# tests (Playwright drives the Debian browser; its own browser download cannot work here).
fonts:
	@[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core; }

browser: fonts
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

run: sync fonts
	$(PY) deploy/run_local.py

# promtool (Debian's prometheus package) runs the alert rules' unit tests in tests/deploy.
tools:
	@command -v promtool >/dev/null 2>&1 || { \
		echo "installing promtool (Debian package prometheus)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

test: sync tools browser
	$(VENV)/bin/pytest -m "not faults and not cluster"

# Restarts the machine's RabbitMQ and PostgreSQL mid-stream: run apart from the other tests.
test-faults: sync
	$(VENV)/bin/pytest -m faults -s tests/faults

# Starts its own three-node RabbitMQ cluster (ports 5701-5703, 25701-25703) beside the
# machine's broker, which it leaves alone; prints a report of events, recovery, lost, duplicated.
test-cluster: sync
	$(VENV)/bin/pytest -m cluster -s tests/cluster

# Not a timed test: ratios to a bare twin measured in the same run (bench/http.py).
test-bench: sync
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(PY) bench/http.py --quick

lint: sync
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy contracts/ssu_contracts libs/common/ssu_common services/*/ssu_* cli/ssu_cli

contracts: sync
	$(PY) -m ssu_contracts.generate

# Broker identities and topology (ssu_common.identities, ssu_common.topology) for compose and k8s.
broker-definitions: sync
	$(PY) deploy/broker_identities.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .run
