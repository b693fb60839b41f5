# The two commands of the README: `make run` starts the app, `make test` runs every check.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TESTSTAMP := $(VENV)/.test-installed
ORACLE := $(VENV)/.oracle

.PHONY: run demo-cli test lint pytest venv clean

venv: $(STAMP)

# The app's own dependencies only: `make run` never installs the test tools (torch among them).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

# `make test` adds the test extra (pytest, linters, torch, openai-harmony, the real vocabulary's data).
$(TESTSTAMP): $(STAMP)
	@# shellcheck lints the build scripts (tests/packaging); best effort where apt-get exists
	-@command -v shellcheck >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null 2>&1 || true
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TESTSTAMP)

# OpenAI's reference implementation is the test oracle. Its metadata says Python >= 3.12 and pulls in
# server packages; only gpt_oss.torch and its browser tool are needed, and they run on 3.11, so install
# the wheel alone (the browser tool's own imports are in the `oracle` extra).
$(ORACLE): $(TESTSTAMP)
	rm -rf $(VENV)/wheels && mkdir -p $(VENV)/wheels
	$(PY) -m pip download --quiet --no-deps --python-version 3.12 --only-binary=:all: \
		gpt-oss==0.0.9 -d $(VENV)/wheels
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python $(VENV)/wheels/gpt_oss-0.0.9-py3-none-any.whl
	$(PY) -m pip install --quiet -e '.[test,oracle]'
	touch $(ORACLE)

# `make run` starts the app; MODEL=DIR skips the first-run setup, ARGS go to the app
# (e.g. ARGS="--data-dir /tmp/oss-desk --profile 16gb").
MODEL ?=
run: $(STAMP)
	$(PY) -m app.main $(if $(MODEL),--model $(MODEL)) $(ARGS)

# `make demo`: the app on a tiny demo model whose replies are scripted (labelled "Demo model — not
# gpt-oss"), so every part of the app can be tried without the weights. The model is written once,
# into the app's data folder (or DEMO_DIR=...); ARGS go to the app.
.PHONY: demo
DEMO_DIR ?=
demo: $(STAMP)
	folder="$$($(PY) -m engine.testing.demo $(DEMO_DIR))" && $(PY) -m app.main --model "$$folder" $(ARGS)

# The command-line generator. Without MODEL, a tiny random-weight checkpoint shows the whole path.
DEMO := .cache/demo-model
PROMPT_IDS ?= 1,2,3
demo-cli: $(STAMP)
ifeq ($(MODEL),)
	test -f $(DEMO)/config.json || $(PY) -m engine.testing.synthetic $(DEMO) --preset tiny
	$(PY) -m engine.cli.generate --model $(DEMO) $(if $(ARGS),$(ARGS),--prompt-ids $(PROMPT_IDS))
else
	$(PY) -m engine.cli.generate --model $(MODEL) $(if $(ARGS),$(ARGS),--prompt-ids $(PROMPT_IDS))
endif

lint: $(TESTSTAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy engine metal_kernels app server tests benchmarks

pytest: $(ORACLE)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

test: lint pytest

clean:
	rm -rf $(VENV) build dist *.egg-info

# The app bundle, with PyInstaller from the `package` extra: on a Mac OSS Desk.app and a .dmg
# (packaging/build_macos.sh), elsewhere the same spec's one-folder program in build/dist/.
.PHONY: bundle bundle-test
PACKAGING := $(VENV)/.packaging
ifeq ($(shell uname -s),Darwin)
BUILD_BUNDLE := packaging/build_macos.sh
BUNDLED_PROGRAM := build/dist/OSS Desk.app/Contents/MacOS/OSS Desk
else
BUILD_BUNDLE := packaging/build_linux.sh
BUNDLED_PROGRAM := build/dist/oss-desk/oss-desk
endif

$(PACKAGING): $(STAMP)
	$(PY) -m pip install --quiet -e '.[package]'
	touch $(PACKAGING)

bundle: $(PACKAGING)
	PYTHON=$(PY) bash $(BUILD_BUNDLE)

# Builds the bundle, then runs the bundled program's --self-test offscreen, away from the source.
bundle-test: bundle
	$(PY) packaging/run_bundle_test.py "$(BUNDLED_PROGRAM)"
