"""Shared fixtures: a fast-failing adapter and a fake INSTAR camera per generation on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alarmcloud_camera_instar.adapter import InstarAdapter
from alarmcloud_camera_instar.config import InstarConfig
from alarmcloud_camera_instar.testing import FakeInstarCamera

GENERATIONS = ("hd", "fullhd", "wqhd")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def adapter() -> InstarAdapter:
    return InstarAdapter(InstarConfig(timeout_s=0.5, retries=1, retry_backoff_s=0.01))


@pytest.fixture(params=GENERATIONS)
def camera(request: pytest.FixtureRequest) -> Iterator[FakeInstarCamera]:
    with FakeInstarCamera(request.param, password="S3cret!pass") as fake:
        yield fake
