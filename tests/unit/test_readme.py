"""The README's configuration tables name every option of every service."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from adapter.config import AdapterConfig
from ambassador.config import AmbassadorConfig
from podkit.options import env_name
from sidecar.config import SidecarConfig

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("cls", [AdapterConfig, SidecarConfig, AmbassadorConfig])
def test_every_option_is_documented(cls: type[Any]) -> None:
    for f in dataclasses.fields(cls):
        assert f"`{env_name(cls, f.metadata['option'])}`" in README, f.name
        assert f"`--{f.name.replace('_', '-')}`" in README, f.name
