"""How iterselect.distributed joins a Ray cluster, one branch at a time: a stand-in for the ray
module records what ray.init was asked (the real clusters are in test_distributed*.py)."""
from __future__ import annotations

import pytest

from iterselect.distributed import _cluster


class FakeRay:
    def __init__(self, running_local_cluster: bool = False, initialized: bool = False):
        self.calls = []
        self.running_local_cluster = running_local_cluster
        self.initialized = initialized

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        if kwargs.get("address") == "auto" and not self.running_local_cluster:
            raise ConnectionError("no cluster found")
        self.calls.append(kwargs)


@pytest.fixture
def fake(monkeypatch):
    ray = FakeRay()
    monkeypatch.setattr(_cluster, "import_ray", lambda func: ray)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return ray


def test_none_starts_a_local_cluster(fake):
    _cluster.connect(None, "f")
    assert fake.calls == [{"include_dashboard": False}]


def test_none_joins_ray_address_without_local_options(fake, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    _cluster.connect(None, "f")
    assert fake.calls == [{}]  # ray.init reads RAY_ADDRESS itself


def test_auto_prefers_ray_address(fake, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    _cluster.connect("auto", "f")
    assert fake.calls == [{"address": "head:6379"}]


def test_auto_joins_a_running_local_cluster(fake):
    fake.running_local_cluster = True
    _cluster.connect("auto", "f")
    assert fake.calls == [{"address": "auto"}]


def test_auto_without_any_cluster_starts_one(fake):
    _cluster.connect("auto", "f")
    assert fake.calls == [{"include_dashboard": False}]


def test_an_address_is_joined_as_given(fake):
    _cluster.connect("head:6379", "f")
    assert fake.calls == [{"address": "head:6379"}]


def test_a_connected_process_stays_connected(fake):
    fake.initialized = True
    _cluster.connect("head:6379", "f")
    assert fake.calls == []


def test_a_non_string_address_is_refused(fake):
    with pytest.raises(TypeError, match="address"):
        _cluster.connect(6379, "f")
