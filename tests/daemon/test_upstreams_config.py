"""The daemon configuration's ``upstreams`` and ``routing_policy``: what is accepted, and errors
that name the field (no secret in them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "daemon"))

EC2 = {"name": "aws", "provider": "ec2", "region": "us-east-1", "username": "AKIDCONFIGTEST",
       "password_env": "SIROCCO_CFG_SECRET", "options": {"image": "ami-12345678"}}
ENV = {"SIROCCO_CFG_SECRET": "config-secret-value"}


def load(tmp_path, upstreams, env=None, **more):
    from siroccod.config import load_config
    return load_config(env=ENV if env is None else env,
                       overrides=dict(data_dir=str(tmp_path), upstreams=upstreams, **more))


def refused(tmp_path, upstreams, attribute, env=None, **more):
    with pytest.raises(InvalidInput) as info:
        load(tmp_path, upstreams, env=env, **more)
    assert info.value.attribute == attribute, info.value
    assert "config-secret-value" not in str(info.value)
    return str(info.value)


def test_an_upstream_with_its_secret_from_the_environment(tmp_path):
    config = load(tmp_path, [dict(EC2, prices={"t3.micro": 0.0104}, watts_per_cpu=2, location="paris")])
    (up,) = config.upstreams
    assert (up.name, up.provider, up.password, up.location) == ("aws", "ec2", "config-secret-value", "paris")
    assert up.prices == {"t3.micro": 0.0104} and up.watts_per_cpu == 2.0
    assert config.routing_policy == "first"
    assert "config-secret-value" not in repr(config) and "AKIDCONFIGTEST" not in repr(config)


def test_the_secret_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    cfg = dict(EC2, password_file=str(secret))
    del cfg["password_env"]
    assert load(tmp_path, [cfg]).upstreams[0].password == "from-a-file"
    cfg["password_file"] = str(tmp_path / "missing")
    assert "cannot read" in refused(tmp_path, [cfg], "upstreams[0].password_file")


def test_errors_name_the_field(tmp_path):
    refused(tmp_path, {"aws": EC2}, "upstreams")
    refused(tmp_path, [dict(EC2, colour="red")], "upstreams[0]")
    refused(tmp_path, [dict(EC2, provider="gcp")], "upstreams[0].provider")
    refused(tmp_path, [dict(EC2, name="local")], "upstreams[0].name")
    refused(tmp_path, [dict(EC2, name="sim1")], "upstreams[0].name")  # a host's name
    refused(tmp_path, [EC2, dict(EC2)], "upstreams[1].name")
    assert "SIROCCO_CFG_SECRET is not set" in refused(tmp_path, [EC2], "upstreams[0].password_env", env={})
    refused(tmp_path, [dict(EC2, password="inline")], "upstreams[0].password")  # two ways at once
    refused(tmp_path, [dict(EC2, options={"flavour": "x"})], "upstreams[0].options")
    refused(tmp_path, [dict(EC2, prices={"t3.micro": "cheap"})], "upstreams[0].prices")
    refused(tmp_path, [dict(EC2, images={"debian": 12})], "upstreams[0].images")
    refused(tmp_path, [dict(EC2, timeout=0)], "upstreams[0].timeout")
    refused(tmp_path, [dict(EC2, name_prefix="bad prefix")], "upstreams[0].name_prefix")
    assert "cheapest" in refused(tmp_path, [EC2], "routing_policy", routing_policy="random")
