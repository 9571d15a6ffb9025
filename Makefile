# Sirocco — build, test and demo on Debian 12 with Python 3.11.
#
#   make demo    set up the machine, start libvirtd, run playbooks/demo.yml
#   make test    lint + unit + daemon + fuzz + contract + images + integration + compat + sanity (what CI runs)
#
# Every target installs what it needs: Debian packages (scripts/setup-system.sh,
# as root), the dev venv (.venv, exact versions from locks/ansible-core-2.19.txt) and the
# stand-in services (tests/standins/). See README.md.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON      ?= python3.11
VENV        := $(CURDIR)/.venv
BIN         := $(VENV)/bin
# The locks: exact versions made from pyproject.toml's ranges by `make lock` (uv), one per ansible-core.
# The dev venv installs every extra from the 2.19 lock; the compat venvs take theirs as constraints.
LOCKS       := locks
DEV_LOCK    := $(LOCKS)/ansible-core-2.19.txt
# every ansible-core that meta/runtime.yml's requires_ansible promises; `make compat` runs the smoke set on each
CORES       := 2.16 2.17 2.18 2.19
COMPAT_DIR  := $(CURDIR)/.venv-compat
# what a compat venv installs beside ansible-core: the collection's own requirements files, as a user would
COMPAT_REQS := requirements/ec2.txt requirements/xenserver.txt
# `make lock LOCK_UPGRADE=` re-resolves only what pyproject.toml's change needs
LOCK_UPGRADE ?= --upgrade
# the working tree, seen as an installed collection (ansible-test needs a path
# ending in ansible_collections/<namespace>/<name>)
SITE         = $(VENV)/lib/python3.11/site-packages
COLL_LINK    = $(SITE)/ansible_collections/sirocco/cimi
DEPS_STAMP  := $(VENV)/.sirocco-deps.stamp
SYS_STAMP   := $(VENV)/.sirocco-system.stamp
# ansible-test downloads this pip bootstrap unless it is cached; ours runs the
# pip wheel bundled with ensurepip (scripts/get_pip.py), so no download happens.
GET_PIP     := $(HOME)/.ansible/test/cache/get_pip_24_2.py
PYTEST_ARGS ?=
BENCH_ARGS  ?=
SANITY_ARGS ?=

export PATH := $(BIN):$(PATH)
export PYTHON
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export ANSIBLE_FORCE_COLOR := 0
# run pytest in DIR (with OPTIONS before PYTEST_ARGS); exit status 5 (no tests collected: the suite is still
# empty) is not a failure
define run_pytest
	@if [[ ! -d $(1) ]]; then echo "$(1): no such directory yet, nothing to run"; exit 0; fi; \
	rc=0; $(BIN)/pytest $(1) $(2) $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "$(1): no tests collected yet (pytest exit 5), not a failure"; \
	elif [[ $$rc -ne 0 ]]; then exit $$rc; fi
endef

.PHONY: help venv lock requirements compat fresh system packages libvirtd libvirt-peer vcsim unit daemon fuzz bench-daemon contract integration inventory bench-inventory sanity lint test demo build clean images bench-images bench-guests images-clean

help:
	@echo "make demo         set up the machine, start libvirtd, run playbooks/demo.yml"
	@echo "make test         lint + unit + daemon + fuzz + contract + images + integration + compat + sanity (CI)"
	@echo "make venv         .venv from locks/ansible-core-2.19.txt (exact versions); the tree linked in as the collection"
	@echo "make lock         refresh locks/*.txt from pyproject.toml's ranges (uv pip compile; LOCK_UPGRADE= keeps pins)"
	@echo "make requirements write requirements.txt and requirements/<provider>.txt from pyproject.toml"
	@echo "make system       Debian packages (scripts/setup-system.sh) + libvirtd (tests/standins/start-libvirtd.sh)"
	@echo "make unit         pytest tests/unit (no services)"
	@echo "make daemon       pytest tests/daemon (siroccod on the libvirt test driver; real QEMU, PostgreSQL, XAPI, vcsim)"
	@echo "make fuzz         schemathesis against a running siroccod, from its OpenAPI description (2-3 min)"
	@echo "make bench-daemon siroccod throughput and latency beside a bare Flask ceiling (a table, no asserts)"
	@echo "make contract     pytest tests/contract (starts libvirtd, builds the vcsim stand-in)"
	@echo "make openstack    install and start the OpenStack stand-in (tests/standins/openstack), left running"
	@echo "make integration  pytest tests/integration (ansible-playbook per target, playbooks/multicloud.yml; starts libvirtd, OpenStack)"
	@echo "make inventory    pytest tests/integration/inventory (the inventory plugin, every stand-in; part of integration)"
	@echo "make bench-inventory  ansible-inventory over 2,000 EC2 instances vs amazon.aws.aws_ec2, 4 providers vs 1 (a table)"
	@echo "make compat       the built collection on ansible-core $(CORES): inventory and module smoke set (~5 min)"
	@echo "make images       pytest tests/images: the image factory's full-size build (cached by spec) boots on libvirtd"
	@echo "make bench-images cold/cached image build times and sizes per format (a table)"
	@echo "make bench-guests 1 and 3 guests from the factory image to SSH-ready under TCG (a table; ~10 min)"
	@echo "make images-clean empty the image cache (\$$SIROCCO_IMAGE_CACHE or ~/.cache/sirocco/images)"
	@echo "make sanity       ansible-test sanity"
	@echo "make lint         ruff, mypy (pyproject.toml's files), import-linter (.importlinter: the daemon's layers), the requirements files' check, ansible-lint (production profile)"
	@echo "make build        ansible-galaxy collection build into build/"
	@echo "make fresh        make test (or FRESH_ARGS='make demo') on a clone of HEAD in a new Debian 12 root (as root)"
	@echo "make clean        remove build outputs and caches (keeps .venv)"

# ---------------------------------------------------------------------------
# machine set-up
# ---------------------------------------------------------------------------

# Debian packages: re-checked when the script changes (it is idempotent anyway)
$(SYS_STAMP): scripts/setup-system.sh
	bash scripts/setup-system.sh
	@mkdir -p $(dir $@) && touch $@

packages:
	bash scripts/setup-system.sh

# --smoke: a diskless QEMU domain and a dir storage pool round-trip (~2 s), so a
# broken libvirtd shows up here rather than as a confusing test failure
libvirtd: packages
	bash tests/standins/start-libvirtd.sh --smoke

system: packages libvirtd

# ---------------------------------------------------------------------------
# dev venv: exact versions from the 2.19 lock, the working tree symlinked in
# ---------------------------------------------------------------------------

$(DEPS_STAMP): $(DEV_LOCK) | $(SYS_STAMP)
	@test -x $(BIN)/python || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q -c $(DEV_LOCK) --upgrade pip
	$(BIN)/python -m pip install -q -r $(DEV_LOCK)
	@touch $@

venv: $(DEPS_STAMP)
	@mkdir -p $(dir $(COLL_LINK))
	@if [[ "$$(readlink $(COLL_LINK) || true)" != "$(CURDIR)" ]]; then \
		rm -rf $(COLL_LINK) && ln -sfn $(CURDIR) $(COLL_LINK) && echo "linked $(COLL_LINK) -> $(CURDIR)"; fi
	@# the daemon's package (daemon/siroccod) importable from the tree, and its console script
	@echo "$(CURDIR)/daemon" > $(SITE)/siroccod-dev.pth
	@printf '#!%s\nfrom siroccod.cli import main\nmain(prog_name="siroccod")\n' "$(BIN)/python" > $(BIN)/siroccod && chmod +x $(BIN)/siroccod

# The locks, from pyproject.toml's ranges: one per ansible-core (2.16-2.18 need an older resolvelib than
# 2.19). 2.19's holds every extra (the dev venv); the others the providers' SDKs (the compat venvs).
lock: venv
	@for core in $(CORES); do \
		if [[ $$core == 2.19 ]]; then extras=(--all-extras); else extras=(--extra ansible --extra providers); fi; \
		echo "locks/ansible-core-$$core.txt"; \
		$(BIN)/uv pip compile -q pyproject.toml "$${extras[@]}" -c $(LOCKS)/ansible-core-$$core.in \
			--universal --python-version 3.11 $(LOCK_UPGRADE) --custom-compile-command "make lock" \
			-o $(LOCKS)/ansible-core-$$core.txt; \
	done

requirements:
	$(PYTHON) scripts/pydeps.py

# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

# ansible-lint: .ansible-lint (production profile, offline: it must not install this tree into ~/.ansible)
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	@# siroccod's layers and the core's independence (.importlinter); the daemon's package from the tree
	PYTHONPATH=daemon $(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/pydeps.py --check
	$(BIN)/ansible-lint --offline --profile production

unit: venv
	$(call run_pytest,tests/unit)

# a throwaway PostgreSQL cluster (Debian's package) on 127.0.0.1; prints its URL. Left running, like
# libvirtd; `bash tests/standins/postgres/start.sh --stop` stops it.
postgres: packages
	bash tests/standins/postgres/start.sh

# a second libvirt host on this machine (a session libvirtd as user sirocco-peer, its own host UUID):
# the target of real live migrations from qemu:///system. Left running; `--stop` stops it.
libvirt-peer: libvirtd
	bash tests/standins/libvirt-peer/start.sh

# the embedded default (libvirt test driver) through app.test_client(), `siroccod serve` processes;
# real QEMU domains behind libvirtd (kill -9 and restart), two processes on one PostgreSQL,
# XenServer (XAPI stand-in) and ESX (vcsim) hosts, live migration between two libvirt hosts
daemon: venv libvirtd vcsim postgres libvirt-peer
	$(call run_pytest,tests/daemon)

# schemathesis against `siroccod serve` (a real process), driven by the /cimi/openapi.json it serves;
# bounded (FUZZ_MAX_TIME seconds, FUZZ_EXAMPLES per operation) and deterministic (FUZZ_SEED);
# output and JUnit reports in tests/output/fuzz/
fuzz: venv
	$(call run_pytest,tests/fuzz)

# a table of requests/s and p50/p99 latencies (listing 1,000 machines, one machine, create->delete)
bench-daemon: venv
	$(BIN)/python tests/bench/daemon/run.py $(BENCH_ARGS)

# the vSphere stand-in (vcsim) is compiled from main.go when it changed (the tests would do it too)
vcsim: $(SYS_STAMP)
	bash tests/standins/vcsim/build.sh

# The OpenStack stand-in: the real Keystone, Glance, Placement and Nova (fake virt driver) in
# .venv-openstack, on MariaDB and RabbitMQ. Installed once (stamp file); started unless it already
# runs (databases recreated, ~1 min); left running for later targets: `make openstack-stop` ends it.
.PHONY: openstack openstack-stop
openstack: $(SYS_STAMP)
	bash tests/standins/openstack/install.sh
	bash tests/standins/openstack/start.sh

openstack-stop:
	bash tests/standins/openstack/stop.sh

contract: venv libvirtd vcsim openstack
	$(call run_pytest,tests/contract)

# playbooks/multicloud.yml's test also needs the OpenStack stand-in (moto it starts itself). Two pytest-xdist
# workers: the guests' playbooks on one, the targets shared out (tests/integration/conftest.py); the machine_image
# target builds tests/images' spec, which `make images` leaves in the factory's cache. INTEGRATION_WORKERS=0 runs
# everything in this process (pdb, -s).
INTEGRATION_WORKERS ?= 2
integration: venv libvirtd vcsim openstack
	$(call run_pytest,tests/integration,-n $(INTEGRATION_WORKERS))

# the inventory plugin alone (make integration runs it too): the real ansible-inventory against libvirt's test
# driver, the XAPI stand-in, vcsim, moto, a provider that is down and one that never answers (~1 min)
inventory: venv vcsim
	$(call run_pytest,tests/integration/inventory)

# seconds of `ansible-inventory --list`: 2,000 EC2 instances on moto beside amazon.aws.aws_ec2 (a separate venv
# from PyPI, made on first use), four providers at once vs the slowest alone; prints tables (~20 min)
bench-inventory: venv vcsim
	$(BIN)/python tests/bench/inventory/run.py $(INVENTORY_BENCH_ARGS)

# The image factory (plugins/module_utils/images): one full-size build per run, from the cache
# ($SIROCCO_IMAGE_CACHE, else ~/.cache/sirocco/images) when the spec and recipe did not change; booted
# on the real libvirtd under TCG. Needs root (mmdebstrap).
images: venv libvirtd
	$(call run_pytest,tests/images)

bench-images: venv
	$(BIN)/python tests/bench/images/run.py $(IMAGES_BENCH_ARGS)

# GUESTS_BENCH_ARGS=--kvm also probes KVM (informational); --runs N
bench-guests: venv libvirtd
	$(BIN)/python tests/bench/guests/run.py $(GUESTS_BENCH_ARGS)

images-clean: venv
	$(BIN)/python scripts/images.py clean --all

$(GET_PIP): scripts/get_pip.py
	@mkdir -p $(dir $@)
	cp scripts/get_pip.py $@

# ansible-test sanity, from the symlinked collection path. ANSIBLE_TEST_CONTENT_ROOT
# is needed because os.getcwd() resolves symlinks, so `cd` alone lands back in
# the repo. Each sanity test that needs tools (pylint, yamllint, validate-modules,
# ...) gets its own venv with ansible-test's pinned requirements, pip-installed
# from PyPI on first use and cached under ~/.ansible/test/venv; the pip
# bootstrap comes from $(GET_PIP), so nothing else is downloaded.
# Not --venv/--docker: delegation re-runs ansible-test from os.getcwd(), i.e.
#   the resolved repo path, which is not under ansible_collections/ and fails.
# --python 3.11: the only interpreter on the machine; compile/import for the
#   other Python versions ansible-core supports cannot run here.
# All 24 sanity tests of ansible-core 2.19 run (pslint has no PowerShell files to check).
sanity: venv $(GET_PIP)
	cd $(COLL_LINK) && ANSIBLE_TEST_CONTENT_ROOT=$(COLL_LINK) \
		$(BIN)/ansible-test sanity --python 3.11 --color no $(SANITY_ARGS)

# One venv per ansible-core, as a user would make it: `pip install ansible-core==X.*` plus the collection's
# requirements files, with the core's lock as constraints. tests/compat installs the built tarball into each
# and runs the smoke set (inventory over two providers, a module's lifecycle, a missing SDK's message).
$(COMPAT_DIR)/%/.stamp: $(LOCKS)/ansible-core-%.txt $(COMPAT_REQS) | $(SYS_STAMP)
	rm -rf $(COMPAT_DIR)/$*
	$(PYTHON) -m venv $(COMPAT_DIR)/$*
	$(COMPAT_DIR)/$*/bin/python -m pip install -q -c $< 'ansible-core==$*.*' $(addprefix -r ,$(COMPAT_REQS))
	@touch $@

compat: export SIROCCO_COMPAT_DIR = $(COMPAT_DIR)
compat: export SIROCCO_COMPAT_CORES = $(CORES)
compat: venv $(foreach core,$(CORES),$(COMPAT_DIR)/$(core)/.stamp)
	$(call run_pytest,tests/compat)

# images before integration: the machine_image target's build is then a cache hit
test: lint unit daemon fuzz contract images integration compat sanity

# ---------------------------------------------------------------------------
# demo, build, clean
# ---------------------------------------------------------------------------

demo: venv system
	@test -f playbooks/demo.yml || { echo "playbooks/demo.yml is not written yet"; exit 1; }
	$(BIN)/ansible-playbook -i playbooks/inventory/demo.cimi.yml playbooks/demo.yml

build: venv
	@mkdir -p build
	$(BIN)/ansible-galaxy collection build --force --output-path build .

# the set-up on a machine that has never seen the project: scripts/fresh-root.sh (as root; only commits count)
FRESH_ARGS ?=
fresh:
	bash scripts/fresh-root.sh $(FRESH_ARGS)

clean:
	rm -rf build tests/output .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
