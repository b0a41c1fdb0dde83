"""The env docstrings are the spec: their tables list exactly the features and actions in code."""

from __future__ import annotations

import inspect
import re

import pytest

from levgym.envs import (
    GovernanceEnv,
    GovernanceV1Env,
    LiquidatorEnv,
    PortfolioGovernanceEnv,
    render_table,
)
from levgym.envs.cross_protocol import CrossProtocolHedgerEnv

CLASSES = [
    GovernanceEnv,
    GovernanceV1Env,
    LiquidatorEnv,
    PortfolioGovernanceEnv,
    CrossProtocolHedgerEnv,
]

SECTIONS = (
    "Description",
    "Action Space",
    "Observation Space",
    "Rewards",
    "Starting State",
    "Episode End",
    "Arguments",
    "Vectorized environment",
    "Version History",
)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_docstring_tables_match_the_named_features(cls):
    doc = inspect.getdoc(cls)
    venv = cls.vector_class
    # an env whose observation stacks frames documents one frame
    documented = getattr(venv, "FRAME_FEATURES", venv.FEATURES)
    assert render_table(documented) in doc
    assert render_table(venv.ACTIONS) in doc
    # Each table row names the feature at that index, in order, and nothing else is listed.
    rows = re.findall(r"^\| (\d+) \| `([^`]+)` \|", doc, flags=re.M)
    names = [f.name for f in venv.ACTIONS] + [f.name for f in documented]
    assert [n for _, n in rows] == names
    assert len({f.name for f in venv.FEATURES}) == len(venv.FEATURES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_docstring_has_gymnasium_sections_in_order(cls):
    doc = inspect.getdoc(cls)
    positions = [doc.index(f"## {s}") for s in SECTIONS]
    assert positions == sorted(positions)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_observation_space_bounds_come_from_the_feature_table(cls):
    env = cls(num_positions=8)
    feats = cls.vector_class.FEATURES
    assert env.observation_space.shape == (len(feats),)
    assert env.observation_space.low.tolist() == [f.low for f in feats]
    assert env.observation_space.high.tolist() == [f.high for f in feats]
