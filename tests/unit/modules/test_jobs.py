"""Pure logic of sirocco.cimi.job_info: a job and the jobs nested under it."""

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils import jobs
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound

DOCS = [
    {"id": "j1", "nestedJobs": [{"href": "j2"}, {"href": "j3"}]},
    {"id": "j2", "parentJob": {"href": "j1"}},
    {"id": "j3", "parentJob": {"href": "j1"}, "nestedJobs": [{"href": "j4"}]},
    {"id": "j4", "parentJob": {"href": "j3"}},
    {"id": "j5"},
    {"id": "j6", "parentJob": {"href": "j5"}},  # known only through its parentJob
]


def test_a_family_is_the_job_then_its_nested_jobs_at_every_depth():
    assert [d["id"] for d in jobs.family(DOCS, "j1")] == ["j1", "j2", "j3", "j4"]
    assert [d["id"] for d in jobs.family(DOCS, "j5")] == ["j5", "j6"]
    assert [d["id"] for d in jobs.family(DOCS, "j4")] == ["j4"]


def test_an_unknown_job_is_not_found():
    with pytest.raises(NotFound):
        jobs.family(DOCS, "nope")
