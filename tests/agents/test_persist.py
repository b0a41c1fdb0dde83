"""Loading models and statistics never runs code from the file (agents.persist), on every path:
``evaluate --model``, ``train --resume`` and ``benchmark --out <existing>``; ``--trust-pickle``
still loads old files."""

import base64
import json
import pickle
import zipfile

import numpy as np
import pytest

from agents.benchmark import run_benchmark
from agents.evaluate import load_model_policy
from agents.persist import NormStats, UnsafeFileError, read_stats, save_model
from agents.train import checkpoint_files, load_policy, train
from levgym import naming
from levgym.cli import main

SMALL = [
    "n_envs=2",
    "n_steps=32",
    "batch_size=64",
    "n_epochs=1",
    "checkpoint_freq=64",
    "env_kwargs.num_positions=16",
    "env_kwargs.horizon_h=6",
]
SUITE = """
name: tiny
episodes: 2
seed: 1000000
envs:
  levgym/Governance-v0:
    env_kwargs: {num_positions: 16, horizon_h: 6}
    scenarios: [shock]
"""


class Payload:
    """Unpickling this creates ``marker``: stands for any code an attacker wants to run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def evil_bytes(marker) -> bytes:
    return pickle.dumps(Payload(marker))


def test_the_payload_runs_when_unpickled(tmp_path):
    # the control: without it the tests below could pass with a payload that does nothing
    marker = tmp_path / "control"
    pickle.loads(evil_bytes(marker))
    assert marker.exists()


def plant_in_zip(path, key, payload: bytes) -> None:
    """Put a ``:serialized:`` entry holding ``payload`` under ``key`` of a model zip's data."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    data = json.loads(entries["data"])
    data[key] = {":type:": "<class 'x'>", ":serialized:": base64.b64encode(payload).decode()}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in entries.items():
            z.writestr(name, raw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small finished run (model.zip, vecnormalize.json, checkpoints at 64 and 128 steps)."""
    out = tmp_path_factory.mktemp("persist") / "run"
    train(
        "levgym/Governance-v0",
        "ppo",
        total_timesteps=128,
        seed=1,
        out=out,
        hyper=SMALL,
        progress=False,
        command="pytest",
    )
    return out


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run, free to tamper with."""
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    return path


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_new_format_has_no_pickle_and_loads_like_sb3(run):
    assert (run / "vecnormalize.json").exists() and not list(run.rglob("*.pkl"))
    stats = read_stats(run / "vecnormalize.json")
    assert stats.norm_obs and stats.obs_count > 1 and stats.obs_mean.shape == stats.obs_var.shape
    import stable_baselines3 as sb3

    safe, _ = load_policy(run)
    reference = sb3.PPO.load(run / "model.zip", device="cpu")
    obs = np.random.default_rng(0).normal(size=(5, *stats.obs_mean.shape)).astype(np.float32)
    for a, b in zip(
        safe.policy.state_dict().values(), reference.policy.state_dict().values(), strict=True
    ):
        assert np.array_equal(a.numpy(), b.numpy())
    assert np.array_equal(
        safe.predict(obs, deterministic=True)[0], reference.predict(obs, deterministic=True)[0]
    )


def test_stats_json_matches_vecnormalize_normalization(run):
    from agents.train import make_vec_env

    stats = read_stats(run / "vecnormalize.json")
    venv = stats.wrap(make_vec_env("levgym/Governance-v0", 2, 0, {"num_positions": 16}))
    obs = np.random.default_rng(1).normal(size=(2, *stats.obs_mean.shape)) * 3
    assert np.allclose(venv.normalize_obs(obs), stats.normalize_obs(obs), atol=1e-6)
    assert NormStats.from_vecnormalize(venv).to_json() == stats.to_json()
    venv.close()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda o: o.__setitem__("format", "pickle"),
        lambda o: o["obs_rms"].__setitem__("var", [-1.0] * len(o["obs_rms"]["var"])),
        lambda o: o.__setitem__("clip_obs", "inf"),
        lambda o: o.pop("gamma"),
    ],
)
def test_malformed_stats_are_refused_in_one_line(run, corrupt):
    obj = json.loads((run / "vecnormalize.json").read_text())
    corrupt(obj)
    (run / "vecnormalize.json").write_text(json.dumps(obj))
    with pytest.raises(ValueError, match="statistics file"):
        read_stats(run / "vecnormalize.json")


def test_pickled_stats_never_run_on_evaluate(run, tmp_path, capsys, suite_file):
    marker = tmp_path / "pwned"
    (run / "vecnormalize.json").unlink()
    (run / "vecnormalize.pkl").write_bytes(evil_bytes(marker))
    with pytest.raises(UnsafeFileError, match="--trust-pickle"):
        load_model_policy(run / "model.zip")
    assert main(["evaluate", "--model", str(run), "--suite", str(suite_file)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "vecnormalize.pkl" in line and "--trust-pickle" in line and "run code" in line
    assert not marker.exists()


def test_pickled_model_entry_never_runs_on_evaluate(run, tmp_path, capsys, suite_file):
    marker = tmp_path / "pwned"
    plant_in_zip(run / "model.zip", "evil_hook", evil_bytes(marker))
    with pytest.raises(UnsafeFileError, match="'evil_hook'"):
        load_model_policy(run / "model.zip")
    assert main(["evaluate", "--model", str(run / "model.zip"), "--suite", str(suite_file)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'evil_hook'" in line and "--trust-pickle" in line
    assert not marker.exists()


def test_payload_in_a_rebuilt_entry_is_never_decoded(run, tmp_path):
    # observation_space / policy_class are rebuilt from the env and the config, not unpickled
    marker = tmp_path / "pwned"
    for key in ("observation_space", "policy_class", "policy_kwargs", "lr_schedule"):
        plant_in_zip(run / "model.zip", key, evil_bytes(marker))
    policy = load_model_policy(run / "model.zip")
    assert policy.predict(np.zeros((1, *policy.stats.obs_mean.shape)))[0].shape[0] == 1
    assert not marker.exists()


def test_pickle_never_runs_on_resume(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    model_zip, stats = checkpoint_files(run, 128)
    stats.unlink()
    stats.with_suffix(".pkl").write_bytes(evil_bytes(marker))
    assert main(["train", "--resume", str(run), "--total-timesteps", "192", "--no-progress"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "model_vecnormalize_128_steps.pkl" in line and "--trust-pickle" in line
    stats.with_suffix(".pkl").unlink()
    save_stats_back = read_stats(run / "vecnormalize.json").to_json()
    stats.write_text(json.dumps(save_stats_back))
    plant_in_zip(model_zip, "evil_hook", evil_bytes(marker))
    assert main(["train", "--resume", str(run), "--total-timesteps", "192", "--no-progress"]) == 2
    assert "'evil_hook'" in one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_pickle_never_runs_on_benchmark_rerun(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    report = tmp_path / "report"
    (report / "train").mkdir(parents=True)
    # the folder the benchmark trains the governor into (levgym.naming), seed 0 of --quick
    name = naming.run_name(naming.env_part("levgym/Governance-v0"), "ppo", 0, time=False)
    run.rename(report / "train" / name)
    plant_in_zip(report / "train" / name / "model.zip", "evil_hook", evil_bytes(marker))
    v0 = "levgym/Governance-v0"  # the planted run is a Governance-v0 run
    with pytest.raises(UnsafeFileError):
        run_benchmark(report, quick=True, progress=False, governance_env=v0)
    argv = ["benchmark", "--quick", "--out", str(report), "--no-progress", "--governance-env", v0]
    assert main(argv) == 2
    assert "--trust-pickle" in one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_trust_pickle_loads_old_format_files(run, capsys, suite_file):
    """An old run: SB3's pickled VecNormalize and a model with a pickled entry levgym does not
    rebuild. Refused by default, loaded with --trust-pickle, with the same normalization."""
    from agents.train import make_vec_env

    stats = read_stats(run / "vecnormalize.json")
    vn = stats.wrap(make_vec_env("levgym/Governance-v0", 2, 0, {"num_positions": 16}))
    vn.save(str(run / "vecnormalize.pkl"))
    vn.close()
    (run / "vecnormalize.json").unlink()
    plant_in_zip(run / "model.zip", "custom_thing", pickle.dumps({"benign": 1}))
    args = ["evaluate", "--model", str(run), "--suite", str(suite_file), "--json"]
    assert main(args) == 2
    assert "--trust-pickle" in one_error_line(capsys.readouterr().err)
    assert main([*args, "--trust-pickle"]) == 0
    assert json.loads(capsys.readouterr().out)["scenarios"]["shock"]["return"]["n"] == 2
    policy = load_model_policy(run, trust_pickle=True)
    assert policy.stats.to_json() == stats.to_json()


def test_trust_pickle_needs_a_file_to_trust(capsys):
    assert main(["train", "--trust-pickle"]) == 2
    assert "--trust-pickle is only used with --resume" in one_error_line(capsys.readouterr().err)
    assert main(["evaluate", "--baseline", "static", "--trust-pickle"]) == 2
    assert "--trust-pickle is only used with --model" in one_error_line(capsys.readouterr().err)


def test_model_zip_is_written_atomically(run, tmp_path):
    from agents.evaluate import load_model_policy as load

    model = load(run).model
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "m.zip"
    target.write_bytes(b"previous")

    class Boom(Exception):
        pass

    def failing_save(path):
        with open(path, "wb") as fh:
            fh.write(b"PK\x03\x04 half a zip")
        raise Boom

    model.save = failing_save
    with pytest.raises(Boom):
        save_model(model, target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in folder.iterdir()] == ["m.zip"]  # no half-written temporary left
