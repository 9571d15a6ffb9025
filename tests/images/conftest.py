"""The image factory's full-size build, made once per session (from the cache when the spec did not change).

The cache is the factory's default ($SIROCCO_IMAGE_CACHE, else ~/.cache/sirocco/images), so a second
`make images` with an unchanged spec and recipe rebuilds nothing. Building needs root.
"""

from __future__ import annotations

import os
import time

import pytest
from image_specs import SPEC, SPEC_PLAIN

from ansible_collections.sirocco.cimi.plugins.module_utils.images import factory
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec


@pytest.fixture(scope="session")
def spec():
    return parse_spec(SPEC)


@pytest.fixture(scope="session")
def built(spec):
    """(BuildResult, seconds) of the session's build."""
    lines = []
    started = time.monotonic()
    result = factory.build(spec, log=lines.append)
    seconds = time.monotonic() - started
    steps = "".join("\n  " + line for line in lines)
    print("image factory: %s in %.1f s%s" % ("cache hit" if result.cached else "built", seconds, steps))
    assert set(result.image.files) == set(SPEC["formats"])
    for path in result.image.files.values():
        assert os.path.isfile(path)
    return result, seconds


@pytest.fixture(scope="session")
def built_plain():
    """The BuildResult of the spec without cloud-init (a second, smaller build; cached likewise)."""
    return factory.build(parse_spec(SPEC_PLAIN))
