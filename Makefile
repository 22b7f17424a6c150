# Darkroom: the two set-up commands are `make run` and `make test`; each
# bootstraps what it needs (uv, the Python workspace, Kafka and s3proxy jars
# from Maven Central, ExifTool from npm) into project-local folders.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/uv/bin/uv)
VENV := $(CURDIR)/.venv
DARKROOM := $(VENV)/bin/darkroom
PY_PROJECTS := pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) schemas/pyproject.toml cli/pyproject.toml tools/devkit/pyproject.toml

.PHONY: help run test soak soak-runtime lint typecheck check bootstrap jars exiftool icc test-tools kafka-up kafka-down kafka-status topics bench bench-pipeline bench-load clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

run: bootstrap ## the main job on embedded defaults (local broker, filesystem store)
	$(DARKROOM) run

test: bootstrap test-tools ## the whole test suite against a real broker and a real S3 server, with the coverage gate
	$(VENV)/bin/pytest --cov --cov-report=term-missing:skip-covered

soak: bootstrap ## the chaos soak: 30 minutes of kills (every stage, catalog state loss, a broker of 3) under uploads; SEED=n
	mkdir -p .darkroom && $(VENV)/bin/python -m darkroom_dev.chaos --minutes 30 --seed $(or $(SEED),1) --workers-per-stage 2 --brokers 3 --out .darkroom/soak-summary.json

soak-runtime: bootstrap ## the stage runtime's long repetitions: darkroom run twice x20, catalog state loss x20 (CI runs 3 and 2)
	DARKROOM_RUN_TWICE_REPS=20 DARKROOM_STATE_LOSS_RUNS=20 $(VENV)/bin/pytest -p no:cacheprovider \
		tests/test_run_twice.py tests/faults/test_state_loss.py tests/test_rebalance_e2e.py

check: lint typecheck ## ruff (lint + format) and mypy

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.synced
	$(VENV)/bin/mypy

bootstrap: $(VENV)/.synced jars exiftool icc ## install everything the commands need

$(CURDIR)/.tools/uv/bin/uv:
	python3 -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

$(VENV)/.synced: $(PY_PROJECTS) | $(UV)
	$(UV) sync --locked --all-packages --all-groups
	@touch $@

jars: $(VENV)/.synced ## fetch the Kafka and s3proxy jars (cached in .tools/jars)
	bash tools/bootstrap/kafka.sh
	bash tools/bootstrap/s3proxy.sh

exiftool: ## install ExifTool into .tools/exiftool
	bash tools/bootstrap/exiftool.sh

icc: ## the press profile for CMYK without ICC (Debian libgs-common; needs root or sudo)
	bash tools/bootstrap/icc.sh

test-tools: ## what only the tests need: Chromium for the gallery page, promtool for the alert rules
	@for script in tools/bootstrap/chromium.sh tools/bootstrap/promtool.sh; do \
		if [ -f $$script ]; then bash $$script || exit 1; fi; \
	done

kafka-up: $(VENV)/.synced jars ## start the local KRaft broker and create the topics
	$(DARKROOM) kafka start
	$(DARKROOM) topics create

kafka-down: $(VENV)/.synced ## stop the local broker (its state stays in .darkroom/kafka)
	$(DARKROOM) kafka stop

kafka-status: $(VENV)/.synced
	$(DARKROOM) kafka status

topics: $(VENV)/.synced ## create the registry's topics (idempotent)
	$(DARKROOM) topics create

bench: bootstrap ## imaging benchmark against Pillow and sharp (prints figures)
	bash tools/bootstrap/bench.sh
	$(VENV)/bin/python bench/engine_bench.py

clean: ## stop the broker and remove local state (not the caches in .tools)
	-$(DARKROOM) kafka stop
	rm -rf .darkroom

bench-pipeline: bootstrap ## pipeline latency and throughput through Kafka (prints figures)
	$(VENV)/bin/python bench/pipeline_bench.py

bench-load: bootstrap ## 1,000 uploads from 100 concurrent clients through the upload API (prints figures)
	$(VENV)/bin/python bench/load_bench.py
