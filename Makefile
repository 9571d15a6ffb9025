# Sirocco — build, test and demo on Debian 12 with Python 3.11.
#
#   make demo    set up the machine, start libvirtd, run playbooks/demo.yml
#   make test    lint + unit + contract + integration + sanity (what CI runs)
#
# Every target installs what it needs: Debian packages (scripts/setup-system.sh,
# as root), the dev venv (.venv, from the ranges in pyproject.toml) and the
# stand-in services (tests/standins/). See README.md.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON      ?= python3.11
VENV        := $(CURDIR)/.venv
BIN         := $(VENV)/bin
# extras of pyproject.toml installed into the dev venv
EXTRAS      := test placement daemon postgres
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
# run pytest in DIR; exit status 5 (no tests collected: the suite is still empty) is not a failure
define run_pytest
	@if [[ ! -d $(1) ]]; then echo "$(1): no such directory yet, nothing to run"; exit 0; fi; \
	rc=0; $(BIN)/pytest $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "$(1): no tests collected yet (pytest exit 5), not a failure"; \
	elif [[ $$rc -ne 0 ]]; then exit $$rc; fi
endef

.PHONY: help venv system packages libvirtd libvirt-peer vcsim unit daemon fuzz bench-daemon contract integration inventory bench-inventory sanity lint test demo build clean

help:
	@echo "make demo         set up the machine, start libvirtd, run playbooks/demo.yml"
	@echo "make test         lint + unit + contract + integration + sanity (CI runs this)"
	@echo "make venv         .venv with the dependencies of pyproject.toml; the tree linked in as the collection"
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
	@echo "make sanity       ansible-test sanity"
	@echo "make lint         ruff check ."
	@echo "make build        ansible-galaxy collection build into build/"
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
# dev venv: dependencies from pyproject.toml, the working tree symlinked in
# ---------------------------------------------------------------------------

$(DEPS_STAMP): pyproject.toml scripts/pydeps.py | $(SYS_STAMP)
	@test -x $(BIN)/python || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python scripts/pydeps.py --build $(EXTRAS) | $(BIN)/python -m pip install -q -r /dev/stdin
	@touch $@

venv: $(DEPS_STAMP)
	@mkdir -p $(dir $(COLL_LINK))
	@if [[ "$$(readlink $(COLL_LINK) || true)" != "$(CURDIR)" ]]; then \
		rm -rf $(COLL_LINK) && ln -sfn $(CURDIR) $(COLL_LINK) && echo "linked $(COLL_LINK) -> $(CURDIR)"; fi
	@# the daemon's package (daemon/siroccod) importable from the tree, and its console script
	@echo "$(CURDIR)/daemon" > $(SITE)/siroccod-dev.pth
	@printf '#!%s\nfrom siroccod.cli import main\nmain(prog_name="siroccod")\n' "$(BIN)/python" > $(BIN)/siroccod && chmod +x $(BIN)/siroccod

# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

lint: venv
	$(BIN)/ruff check .

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

# playbooks/multicloud.yml's test also needs the OpenStack stand-in (moto it starts itself)
integration: venv libvirtd vcsim openstack
	$(call run_pytest,tests/integration)

# the inventory plugin alone (make integration runs it too): the real ansible-inventory against libvirt's test
# driver, the XAPI stand-in, vcsim, moto, a provider that is down and one that never answers (~1 min)
inventory: venv vcsim
	$(call run_pytest,tests/integration/inventory)

# seconds of `ansible-inventory --list`: 2,000 EC2 instances on moto beside amazon.aws.aws_ec2 (a separate venv
# from PyPI, made on first use), four providers at once vs the slowest alone; prints tables (~20 min)
bench-inventory: venv vcsim
	$(BIN)/python tests/bench/inventory/run.py $(INVENTORY_BENCH_ARGS)

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

test: lint unit daemon fuzz contract integration sanity

# ---------------------------------------------------------------------------
# demo, build, clean
# ---------------------------------------------------------------------------

demo: venv system
	@test -f playbooks/demo.yml || { echo "playbooks/demo.yml is not written yet"; exit 1; }
	$(BIN)/ansible-playbook -i localhost, playbooks/demo.yml

build: venv
	@mkdir -p build
	$(BIN)/ansible-galaxy collection build --force --output-path build .

clean:
	rm -rf build tests/output .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
