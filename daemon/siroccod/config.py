"""Configuration: a YAML file, environment overrides, defaults.

With no configuration at all the daemon serves the *embedded default*: three
simulated hosts on libvirt's test driver and a SQLite CMDB in the data directory.

YAML file (every key optional)::

    data_dir: /var/lib/siroccod          # default ~/.local/share/siroccod
    database: postgresql+psycopg://u:p@db/sirocco   # default sqlite:///<data_dir>/cmdb.sqlite
    secret_key_file: /etc/siroccod/secret.key   # seals secrets kept in the CMDB (default <data_dir>/secret.key;
                                         # every process sharing a CMDB needs the same one)
    listen: 127.0.0.1:8080
    public_url: https://cloud.example.org/   # what clients reach; every href is made from it
    allowed_hosts: [cloud.example.org]   # without public_url: the Host names accepted (default: this
                                         # machine's names and the listen address; ["*"]: any)
    tls: {cert: /etc/siroccod/cert.pem, key: /etc/siroccod/key.pem}
    max_body: 1048576                    # bytes; larger requests get 413
    workers: 2                           # job worker threads per process
    meter_interval: 60                   # seconds between samplings of every meter, in the background (0: none)
    meter_retention_hours: 24            # how long samples are kept
    image_sources:                       # where a MachineImage's imageLocation may point (image_sources.py)
      urls: ["https://images.example.org/"]
      directories: [/srv/images]
    placement: first-fit                 # or least-power, optimizer (energy-aware)
    log_level: INFO
    hosts:                               # omit for the three simulated hosts
      - name: kvm1
        provider: libvirt
        uri: qemu:///system
        power_idle: 70                   # watts, for energy-aware placement
        power_max: 250
      - name: sim1
        simulated: {cpu: 8, memory_mib: 16384, mhz: 2400}
        power_idle: 60
        power_max: 180
      - name: esx1
        provider: vsphere                # or xenserver: https://pool-master
        uri: https://esx1.example.org/sdk
        username: root
        password: secret
        validate_certs: false            # a self-signed certificate (default true)
        cpu_allocation_ratio: 4          # vCPUs placed per CPU thread it reports (default 4; or give cpu:)
      - name: shared                     # a host other tools use too:
        uri: qemu+ssh://root@kvm2/system
        name_prefix: siroccod-a-         # what this daemon names what it makes (default sirocco-)
        manage: ["siroccod-a-*", "legacy-*"]   # the only machines it sees (globs; default all)
    routing_policy: cheapest             # first (default), explicit, smallest, least-loaded, lowest-energy
    upstreams:                           # other clouds a machine may be routed to (routing.py, upstreams.py)
      - name: aws-east
        provider: ec2                    # any connector: ec2, openstack, libcloud, vsphere, xenserver, cimi...
        region: us-east-1
        username_env: AWS_ACCESS_KEY_ID  # or username:, and password: / password_env: / password_file:
        password_file: /etc/siroccod/aws-secret
        options: {image: ami-0abc, instance_types: ["t3.*"]}
        prices: {t3.micro: 0.0104}       # per hour, for routing_policy cheapest

Environment overrides (they win over the file): SIROCCOD_CONFIG (the file),
SIROCCOD_DATA, SIROCCOD_DATABASE_URL, SIROCCOD_LISTEN, SIROCCOD_PUBLIC_URL, SIROCCOD_METER_INTERVAL,
SIROCCOD_TLS_CERT,
SIROCCOD_TLS_KEY, SIROCCOD_MAX_BODY, SIROCCOD_WORKERS, SIROCCOD_LOG_LEVEL,
SIROCCOD_ADMIN_PASSWORD (password of the admin user created on first start).
"""

from __future__ import annotations

import fnmatch
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match
from siroccod import image_sources, upstream_config
from siroccod.named_entries import named_entries
from siroccod.placing import PLACERS

# The embedded default: three simulated hosts of different sizes and power figures.
DEFAULT_HOSTS = (
    {"name": "sim1", "simulated": {"cpu": 8, "memory_mib": 16384, "mhz": 2400}, "power_idle": 60, "power_max": 180},
    {"name": "sim2", "simulated": {"cpu": 16, "memory_mib": 32768, "mhz": 2600}, "power_idle": 95, "power_max": 320},
    {"name": "sim3", "simulated": {"cpu": 4, "memory_mib": 8192, "mhz": 2000}, "power_idle": 30, "power_max": 95},
)
_HOST_KEYS = {"name", "provider", "uri", "username", "password", "options", "simulated",
              "power_idle", "power_max", "cpu", "memory_mib", "enabled", "name_prefix", "manage", "validate_certs",
              "cpu_allocation_ratio"}
_TOP_KEYS = {"data_dir", "database", "listen", "tls", "max_body", "workers", "log_level", "hosts",
             "admin_password", "job_poll_interval", "instance_timeout", "auth_cache_seconds", "placement",
             "upstreams", "routing_policy", "public_url", "allowed_hosts", "token_lifetime_days",
             "secret_key_file", "meter_interval", "meter_retention_hours", "image_sources"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
DEFAULT_NAME_PREFIX = "sirocco-"


@dataclass
class HostConfig:
    name: str
    provider: str = "libvirt"
    uri: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict = field(default_factory=dict)
    simulated: dict | None = None  # {"cpu", "memory_mib", "mhz"}: a test-driver host the daemon restores
    power_idle: float | None = None
    power_max: float | None = None
    cpu: int | None = None  # capacity overrides (default: what the host reports)
    memory_mib: int | None = None
    # vCPUs placed per CPU thread the host reports (not when ``cpu`` is given): hypervisors share CPUs
    cpu_allocation_ratio: float = 4.0
    enabled: bool = True
    validate_certs: bool = True  # TLS certificate checks of the host's API (vSphere, XenServer over https)
    # native names of what the daemon makes there: <name_prefix><uuid> (found again after a crash)
    name_prefix: str = DEFAULT_NAME_PREFIX
    # the host's machines this daemon manages (fnmatch globs of their names; None: all): a host that
    # other tools or daemons use too; the others are invisible to it (never adopted, never marked gone)
    manage: list | None = None

    def manages(self, name):
        return self.manage is None or any(fnmatch.fnmatchcase(name or "", glob) for glob in self.manage)


@dataclass
class Config:
    data_dir: Path
    database: str
    listen: str = "127.0.0.1:8080"
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body: int = 1024 * 1024
    workers: int = 1
    log_level: str = "INFO"
    hosts: list = field(default_factory=list)
    admin_password: str | None = field(default=None, repr=False)
    job_poll_interval: float = 0.5  # seconds between looks at the job table when not woken
    instance_timeout: float = 30.0  # a process silent that long is dead: its running jobs fail
    auth_cache_seconds: float = 60.0  # a password verified against a stored hash is not verified again that long
    token_lifetime_days: int = 90  # API tokens expire after that many days (0: never), unless made otherwise
    secret_key_file: Path | None = None  # the key sealing secrets in the CMDB (default <data_dir>/secret.key)
    meter_interval: float = 60.0  # seconds between two samplings of every meter (0: no sampling)
    meter_retention_hours: float = 24.0  # samples older than that are deleted
    image_sources: image_sources.Sources = field(default_factory=image_sources.Sources)  # where images come from
    start_workers: bool = True  # tests may run jobs by hand
    placement: str = "first-fit"  # a key of placing.PLACERS
    upstreams: list = field(default_factory=list)  # upstream_config.UpstreamConfig: other clouds (routing.py)
    routing_policy: str = "first"  # the match.py policy choosing between the hosts and the upstreams
    public_url: str | None = None  # the root clients reach (hrefs are made from it), e.g. behind a proxy
    allowed_hosts: list = field(default_factory=list)  # Host names accepted without public_url (guard.py)

    @property
    def listen_host(self):
        host = self.listen.rpartition(":")[0]
        return host.strip("[]") or "127.0.0.1"

    @property
    def listen_port(self):
        return int(self.listen.rpartition(":")[2])

    @property
    def tls(self):
        return bool(self.tls_cert and self.tls_key)


def ensure_data_dir(config):
    """The data directory, made if missing, readable by its owner only (it holds the CMDB, the sealing key,
    the admin password): done by every command before it opens anything there."""
    path = Path(config.data_dir)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def default_allowed_hosts(listen_host):
    """The Host names a daemon answers to when none are configured: this machine's own names, loopback
    and the address it listens on (not a wildcard one)."""
    names = ["localhost", "127.0.0.1", socket.gethostname(), socket.getfqdn()]
    if listen_host not in ("", "0.0.0.0", "::"):
        names.append(listen_host)
    return list(dict.fromkeys(n for n in names if n))


def _public_url(value):
    if value is None:
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInput("config: public_url must be http(s)://HOST[:PORT][/PATH], got %r" % value,
                           attribute="public_url")
    return str(value)


def _allowed_hosts(value, listen_host):
    if value is None:
        return default_allowed_hosts(listen_host)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput("config: allowed_hosts must be a list of host names (or [\"*\"])",
                           attribute="allowed_hosts")
    return value


def default_data_dir(env=None):
    env = os.environ if env is None else env
    if env.get("SIROCCOD_DATA"):
        return Path(env["SIROCCOD_DATA"]).expanduser()
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "siroccod"


def _int(value, name, minimum=0):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("config: %s must be an integer, got %r" % (name, value), attribute=name) from None
    if number < minimum:
        raise InvalidInput("config: %s must be at least %d" % (name, minimum), attribute=name)
    return number


def _hosts(items):
    hosts = []
    for where, item in named_entries(items, "hosts", _HOST_KEYS, _NAME,
                                     duplicate="config: host name '%(name)s' appears twice"):
        name = item["name"]
        simulated = item.get("simulated")
        if simulated is True:
            simulated = {}
        if simulated is not None:
            if not isinstance(simulated, dict):
                raise InvalidInput("config: %s.simulated must be a mapping" % where, attribute=where)
            simulated = {"cpu": _int(simulated.get("cpu", 8), where + ".simulated.cpu", 1),
                         "memory_mib": _int(simulated.get("memory_mib", 16384), where + ".simulated.memory_mib", 64),
                         "mhz": _int(simulated.get("mhz", 2400), where + ".simulated.mhz", 1)}
        elif not item.get("uri"):
            raise InvalidInput("config: %s needs a uri (or simulated: {...})" % where, attribute=where + ".uri")
        options = item.get("options") or {}
        if not isinstance(options, dict):
            raise InvalidInput("config: %s.options must be a mapping" % where, attribute=where + ".options")
        prefix = item.get("name_prefix", DEFAULT_NAME_PREFIX)
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise InvalidInput("config: %s.name_prefix must be up to 32 letters, digits, . _ -" % where,
                               attribute=where + ".name_prefix")
        manage = item.get("manage")
        if isinstance(manage, str):
            manage = [manage]
        if manage is not None and (not isinstance(manage, list) or not manage
                                   or not all(isinstance(g, str) and g for g in manage)):
            raise InvalidInput("config: %s.manage must be a list of name globs" % where, attribute=where + ".manage")
        if manage is not None and not any(fnmatch.fnmatchcase(prefix + "0" * 36, glob) for glob in manage):
            raise InvalidInput("config: %s.manage must cover the machines the daemon makes (%s<uuid>)"
                               % (where, prefix), attribute=where + ".manage")
        ratio = item.get("cpu_allocation_ratio", 4.0)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 64:
            raise InvalidInput("config: %s.cpu_allocation_ratio must be a number in (0, 64]" % where,
                               attribute=where + ".cpu_allocation_ratio")
        power = {}
        for key in ("power_idle", "power_max"):
            if item.get(key) is not None:
                try:
                    power[key] = float(item[key])
                except (TypeError, ValueError):
                    raise InvalidInput("config: %s.%s must be a number" % (where, key), attribute=key) from None
        hosts.append(HostConfig(
            name=name, provider=item.get("provider", "libvirt"), uri=item.get("uri"),
            username=item.get("username"), password=item.get("password"), options=options,
            simulated=simulated, cpu=_int(item["cpu"], where + ".cpu", 1) if item.get("cpu") else None,
            memory_mib=_int(item["memory_mib"], where + ".memory_mib", 1) if item.get("memory_mib") else None,
            enabled=bool(item.get("enabled", True)),
            validate_certs=bool(item.get("validate_certs", True)), cpu_allocation_ratio=float(ratio),
            name_prefix=prefix, manage=manage, **power))
    return hosts


def _routing_policy(name):
    if name not in match.POLICIES:
        raise InvalidInput("config: routing_policy must be one of %s" % ", ".join(match.POLICIES),
                           attribute="routing_policy")
    return name


def load_config(path=None, env=None, overrides=None):
    """The effective Config from a YAML file (``path`` or $SIROCCOD_CONFIG), the environment and
    ``overrides`` (a dict of the file's keys, used by tests and the CLI)."""
    env = os.environ if env is None else env
    path = path or env.get("SIROCCOD_CONFIG")
    raw = {}
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                raw = yaml.safe_load(handle) or {}
        except OSError as exc:
            raise InvalidInput("config: cannot read %s: %s" % (path, exc.strerror), attribute="config") from None
        except yaml.YAMLError as exc:
            raise InvalidInput("config: %s is not valid YAML: %s" % (path, exc), attribute="config") from None
        if not isinstance(raw, dict):
            raise InvalidInput("config: %s must hold a mapping" % path, attribute="config")
    raw = dict(raw)
    raw.update(overrides or {})
    unknown = sorted(set(raw) - _TOP_KEYS - {"start_workers"})
    if unknown:
        raise InvalidInput("config: unknown key(s) %s" % ", ".join(unknown), attribute="config")
    # environment overrides
    for key, var in (("data_dir", "SIROCCOD_DATA"), ("database", "SIROCCOD_DATABASE_URL"),
                     ("listen", "SIROCCOD_LISTEN"), ("max_body", "SIROCCOD_MAX_BODY"),
                     ("public_url", "SIROCCOD_PUBLIC_URL"), ("meter_interval", "SIROCCOD_METER_INTERVAL"),
                     ("workers", "SIROCCOD_WORKERS"), ("log_level", "SIROCCOD_LOG_LEVEL"),
                     ("admin_password", "SIROCCOD_ADMIN_PASSWORD")):
        if env.get(var) and not (overrides and key in overrides):
            raw[key] = env[var]
    tls = dict(raw.get("tls") or {})
    if env.get("SIROCCOD_TLS_CERT"):
        tls["cert"] = env["SIROCCOD_TLS_CERT"]
    if env.get("SIROCCOD_TLS_KEY"):
        tls["key"] = env["SIROCCOD_TLS_KEY"]
    if bool(tls.get("cert")) != bool(tls.get("key")):
        raise InvalidInput("config: tls needs both cert and key", attribute="tls")

    data_dir = Path(raw["data_dir"]).expanduser() if raw.get("data_dir") else default_data_dir(env)
    database = raw.get("database") or "sqlite:///%s" % (data_dir / "cmdb.sqlite")
    listen = str(raw.get("listen", "127.0.0.1:8080"))
    if not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):[0-9]{1,5}", listen):
        raise InvalidInput("config: listen must be HOST:PORT, got %r" % listen, attribute="listen")
    hosts = _hosts(raw["hosts"]) if raw.get("hosts") is not None else _hosts([dict(h) for h in DEFAULT_HOSTS])
    config = Config(
        data_dir=data_dir, database=database, listen=listen, tls_cert=tls.get("cert"), tls_key=tls.get("key"),
        max_body=_int(raw.get("max_body", 1024 * 1024), "max_body", 1024),
        workers=_int(raw.get("workers", 1), "workers", 0), log_level=str(raw.get("log_level", "INFO")).upper(),
        hosts=hosts, admin_password=raw.get("admin_password"),
        start_workers=bool(raw.get("start_workers", True)), placement=str(raw.get("placement", "first-fit")))
    if config.placement not in PLACERS:
        raise InvalidInput("config: placement must be one of %s" % ", ".join(PLACERS), attribute="placement")
    config.upstreams = upstream_config.parse(raw.get("upstreams"), env, {h.name for h in hosts}, _NAME, _PREFIX)
    config.routing_policy = _routing_policy(raw.get("routing_policy", "first"))
    config.public_url = _public_url(raw.get("public_url"))
    config.image_sources = image_sources.parse(raw.get("image_sources"), config.listen_host, config.listen_port)
    config.token_lifetime_days = _int(raw.get("token_lifetime_days", 90), "token_lifetime_days", 0)
    config.secret_key_file = Path(raw["secret_key_file"]).expanduser() if raw.get("secret_key_file") \
        else data_dir / "secret.key"
    config.allowed_hosts = _allowed_hosts(raw.get("allowed_hosts"), config.listen_host)
    for key in ("job_poll_interval", "instance_timeout", "auth_cache_seconds", "meter_interval",
                "meter_retention_hours"):
        if raw.get(key) is not None:
            setattr(config, key, float(raw[key]))
    return config
