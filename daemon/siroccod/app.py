"""``create_app(config)``: the Flask application and everything behind it; ``start(config)``: everything
behind it without Flask (``siroccod worker``: job threads and metering, no HTTP).

Start-up order: CMDB (created if new) -> admin user on first start -> hosts
(simulated ones get their XML files) -> jobs of dead processes end FAILED ->
simulated hosts restored from the CMDB -> CMDB reconciled with every host ->
stock resources (public MachineConfigs, VolumeConfigs, each host's images) ->
worker threads. ``app.extensions["siroccod"].close()`` undoes it all.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from flask import Flask, redirect
from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from siroccod import cmdb, errors, guard, openapi, placing, sealing
from siroccod.api import admin, cimi
from siroccod.auth import Users
from siroccod.config import Config, ensure_data_dir, load_config
from siroccod.handlers import Worker
from siroccod.hosts import HostPool
from siroccod.jobs import JobRunner
from siroccod.metering import Sampler
from siroccod.recovery import Recovery
from siroccod.resources import Service
from siroccod.sealing import Sealer
from siroccod.store import Resource, Store

log = logging.getLogger("siroccod")
ADMIN_PASSWORD_FILE = "admin-password"
# Public volume sizes offered to everyone: (name, capacity in KB).
STOCK_VOLUME_CONFIGS = (("small", 1024 * 1024), ("medium", 10 * 1024 * 1024), ("large", 100 * 1024 * 1024))


@dataclass
class Daemon:
    config: Config
    store: Store
    pool: HostPool
    users: Users
    service: Service
    runner: JobRunner
    recovery: Recovery
    worker: Worker
    sampler: Sampler
    server_errors: int = 0  # 5xx replies sent (bad input must never cause one)

    def close(self):
        self.sampler.stop()
        self.runner.stop()
        self.pool.close()
        self.store.dispose()


def create_app(config=None, placer=None, **overrides):
    """The app for ``config``: a Config, a path to a YAML file, or None (environment and
    defaults: the embedded default). ``overrides`` are config-file keys (tests use them)."""
    if not isinstance(config, Config):
        config = load_config(path=config, overrides=overrides)
    daemon = start(config, placer)
    if config.start_workers and config.workers:
        daemon.runner.start()
    if config.start_workers:
        daemon.sampler.start()

    app = Flask("siroccod")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["siroccod"] = daemon
    errors.register(app)
    guard.install(app, config.public_url, config.allowed_hosts)
    app.register_blueprint(cimi.bp)
    app.register_blueprint(admin.bp)
    openapi.register(app)

    @app.get("/")
    def root():
        return redirect("/cimi/cloudEntryPoint")

    return app


def start(config, placer=None):
    """Everything behind the API for ``config`` (a Config), started up, its threads not yet running: the
    Daemon (``runner.start()`` and ``sampler.start()`` run the jobs and the metering)."""
    _logging(config.log_level)
    data_dir = ensure_data_dir(config)

    store = Store(config.database)
    users = Users(store, config.auth_cache_seconds, config.token_lifetime_days)
    with store.startup_lock():  # several processes on one PostgreSQL start one at a time
        sealer = Sealer(config.secret_key_file)
        sealing.seal_cmdb(store, sealer)
        with store.transaction() as session:
            generated = users.ensure_admin(session, config.admin_password)
            admin_tenant_id = users.admin_tenant_id(session)
        if generated:
            _announce_admin_password(data_dir, generated)

        pool = HostPool(config, store)
        pool.open()
        worker = Worker(store, pool, sealer=sealer, config=config)
        runner = JobRunner(store, worker, workers=config.workers, poll_interval=config.job_poll_interval,
                           instance_timeout=config.instance_timeout, resumable=worker.resumable)
        runner.register()
        service = Service(store, pool, users, placer or placing.PLACERS[config.placement], wake=runner.wake,
                          sealer=sealer, config=config)
        recovery = Recovery(store, pool, worker, admin_tenant_id)
        runner.fail_interrupted()
        recovery.restore_simulated()
        recovery.reconcile()
        _stock(store, pool)
    sampler = Sampler(store, pool, config.meter_interval, config.meter_retention_hours)
    return Daemon(config, store, pool, users, service, runner, recovery, worker, sampler)


def _logging(level):
    root = logging.getLogger("siroccod")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(getattr(logging, level, logging.INFO))


def _announce_admin_password(data_dir, password):
    """The generated admin password: written to a 0600 file and printed once on the console
    (not through logging, so it never reaches a log file)."""
    path = data_dir / ADMIN_PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    os.chmod(path, 0o600)
    sys.stderr.write("siroccod: first start: created user 'admin' with password %s\n"
                     "siroccod: (also written to %s, readable by you only)\n" % (password, path))
    sys.stderr.flush()


def _slowest(session, name, mhz):
    """A stock MachineConfiguration several hosts offer says the slowest one's cpuSpeed (7.1: what a machine
    of it runs at, at least); one recorded without it (before cpuSpeed was reported) gets it now."""
    row = session.scalars(select(Resource).where(
        Resource.type == "MachineConfiguration", Resource.tenant_id.is_(None), Resource.name == name)).first()
    if row is not None and row.private.get("stock") and mhz < (row.doc.get("cpuSpeed") or mhz + 1):
        row.doc = dict(row.doc, cpuSpeed=mhz)


def _stock(store, pool):
    """Public resources every tenant sees: each host's sizes as MachineConfigs (once per name),
    stock VolumeConfigs, the images each host holds, and what hosts meter as MeterConfigurations."""
    with store.transaction() as session:
        existing = {(r.type, r.name) for r in session.scalars(
            select(Resource).where(Resource.tenant_id.is_(None)))}
        stock_images = {r.name: r for r in session.scalars(
            select(Resource).where(Resource.type == "MachineImage", Resource.tenant_id.is_(None)))}

        def add(type_name, name, doc, host_id=None, native_id=None, state=None):
            cmdb.new_resource(session, type_name, None, dict(doc, name=name), host_id=host_id, native_id=native_id,
                              state=state, private={"stock": True})
            existing.add((type_name, name))

        for name, capacity in STOCK_VOLUME_CONFIGS:
            if ("VolumeConfiguration", name) not in existing:
                add("VolumeConfiguration", name, {"capacity": capacity, "format": "qcow2"})
        for handle in pool.handles.values():
            try:
                configs = handle.list_machine_configs() if handle.supports("machine_config.list") else []
                found = handle.list_machine_images() if handle.supports("machine_image.list") else []
                aspects = handle.capabilities().meters
            except SiroccoError as exc:
                log.warning("host %s: no stock resources: %s", handle.name, exc)
                continue
            for aspect in aspects:  # a client learns what machines are metered on before making one
                name = aspect.rsplit("/", 1)[-1]
                if ("MeterConfiguration", name) not in existing:
                    add("MeterConfiguration", name, {"aspect": aspect, "associatedResources": [type_uri("Machine")],
                                                     "timeScope": "Point"})
            for cfg in configs:
                doc = {k: v for k, v in cfg.to_json().items() if k in model.HARDWARE}
                if ("MachineConfiguration", cfg.name) not in existing:
                    add("MachineConfiguration", cfg.name, doc)
                elif doc.get("cpuSpeed"):
                    _slowest(session, cfg.name, doc["cpuSpeed"])
            for image in found:  # one public image per name, held by one or more hosts
                name = image.name or image.id
                row = stock_images.get(name)
                if row is None:
                    doc = {k: v for k, v in image.to_json().items()
                           if k in ("type", "description", "imageLocation")}
                    add("MachineImage", name, doc, state="AVAILABLE")
                    row = stock_images[name] = session.scalars(select(Resource).where(
                        Resource.type == "MachineImage", Resource.tenant_id.is_(None),
                        Resource.name == name)).first()
                natives = dict(row.private.get("natives") or {})
                if natives.get(handle.name) != image.id:
                    natives[handle.name] = image.id
                    row.private = dict(row.private, natives=natives)
