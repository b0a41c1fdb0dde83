"""The fast paths equal the reference loop: the fused numba kernel (backend ``numba``) and the
cascade without host synchronisation (``step.substep_masked``), on random cases as in
test_reference_parity.py, plus an agent's share of every liquidation."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given

from levgym import scenarios
from levgym.engine import (
    BorrowerParams,
    Drivers,
    EngineParams,
    MarketParams,
    ProtocolParams,
    substep,
)
from levgym.engine.backend import make_converter
from levgym.engine.dispatch import substep_function
from levgym.engine.reference import reference_substep
from levgym.engine.step import substep_masked
from levgym.simulation import Simulator

from .helpers import compare_states as _compare
from .strategies import PARITY_SETTINGS, cases, numpy_rows, run_case

numba = pytest.importorskip("numba")
from levgym.engine.fused import fused_substep  # noqa: E402


@PARITY_SETTINGS
@given(case=cases())
def test_fast_paths_equal_reference(case):
    """Substep by substep from the same state: the fused kernel and the masked cascade (on
    numpy) equal the loop, with and without an agent's share of every liquidation."""
    fused_fn = substep_function("numba")
    masked_fn = substep_function("numpy", cascade="masked")
    share = case.orders
    state = case.state()
    for t, row in enumerate(numpy_rows(case.drivers)):
        u = case.noise_u[t]
        slow, slow_rounds = reference_substep(state, row, u, case.params, share)
        fused, fused_rounds = fused_fn(state, row, u, case.params, share)
        masked, masked_rounds = masked_fn(state, row, u, case.params, share)
        _compare(fused, slow)
        _compare(masked, slow)
        np.testing.assert_array_equal(fused_rounds, slow_rounds)
        np.testing.assert_array_equal(masked_rounds, slow_rounds)
        state = slow


@PARITY_SETTINGS
@given(case=cases(share=False))
def test_an_env_alone_equals_its_slice_of_the_batch(case):
    """Batch independence on random cases: each env run alone (array engine and fused kernel)
    equals its slice of the batched run."""
    batch = list(run_case(case, substep_function("numpy")))
    start = case.state()
    for fn in (substep_function("numpy"), substep_function("numba")):
        for j in range(case.num_envs):
            keep = np.arange(case.num_envs) == j
            alone = dataclasses.replace(
                case, drivers=case.drivers.slice_envs(keep), noise_u=case.noise_u[:, keep]
            )
            for t, (state, rounds) in enumerate(run_case(alone, fn, state=start.select(keep))):
                _compare(batch[t][0].select(keep), state)
                assert rounds[0] == batch[t][1][j]


def test_fused_leaves_its_input_alone():
    params = EngineParams()
    drivers = scenarios.get("shock").drivers(
        3, 6, params, 5, {"drop_frac": "0.5", "drop_hours": "0.5"}
    )
    sim = Simulator(params, drivers, 32, 5)
    before = sim.state.to_numpy()
    row = drivers.row(0, make_converter("numpy"))
    u = sim.noise_at(0)
    fused_substep(sim.state, row, u, params)
    _compare(sim.state, before, rtol=0.0)


@pytest.mark.parametrize("scenario", ["shock", "calm"])
def test_numba_backend_equals_numpy_over_a_run(scenario):
    """Many envs and positions, a whole run: the fused kernel tracks the batched engine."""
    params = EngineParams()
    drivers = scenarios.get(scenario).drivers(16, 36, params, 11, {})
    a = Simulator(params, drivers, 128, 11, backend="numpy")
    b = Simulator(params, drivers, 128, 11, backend="numba")
    assert b.step_fn is fused_substep
    for _ in range(36):
        ra = a.substep()
        rb = b.substep()
        np.testing.assert_array_equal(ra, rb)
    _compare(a.state, b.state, rtol=1e-9)
    assert float(np.sum(a.state.liquidations)) > 0 or scenario == "calm"


def test_masked_cascade_on_torch_cpu_equals_numpy_loop():
    torch = pytest.importorskip("torch")
    params = EngineParams(market=MarketParams(keeper_capacity_per_substep=5.0, pool_depth_usd=20e6))
    drivers = scenarios.get("shock").drivers(
        6, 24, params, 3, {"drop_frac": "0.5", "drop_hours": "1"}
    )
    a = Simulator(params, drivers, 48, 3, backend="numpy")
    b = Simulator(params, drivers, 48, 3, backend="torch")
    b.step_fn = substep_function("torch", "cpu", cascade="masked")
    assert b.step_fn is substep_masked
    total_rounds = 0.0
    for _ in range(24):
        ra = a.substep()
        rb = b.substep()
        assert isinstance(rb, torch.Tensor)
        np.testing.assert_array_equal(ra, rb.numpy())
        total_rounds += float(ra.sum())
    _compare(a.state, b.state.to_numpy(), rtol=1e-10)
    assert total_rounds > 0  # the case has cascades, so the masks were exercised


def test_masked_cascade_never_synchronises():
    """On torch's meta device a tensor has no values: any host sync (``bool``, ``.item()``)
    raises, and any tensor created on another device fails. The masked substep runs there."""
    torch = pytest.importorskip("torch")
    params = EngineParams()
    drivers = scenarios.get("shock").drivers(4, 6, params, 0, {})
    sim = Simulator(params, drivers, 16, 0, backend="torch", device="meta")
    row = drivers.row(0, sim.convert)
    noise = torch.empty((4, 16), dtype=torch.float64, device="meta")
    new, rounds = substep_masked(sim.state, row, noise, params)
    assert new.collateral_asset.device.type == "meta"
    assert rounds.shape == (4,)
    with pytest.raises(Exception):  # noqa: B017 - the loop cascade needs a host sync
        substep(sim.state, row, noise, params)


def test_cuda_picks_the_masked_cascade_and_numba_rejects_float32():
    assert substep_function("torch", "cuda") is substep_masked
    assert substep_function("torch", "cpu") is substep
    assert substep_function("numba") is fused_substep
    with pytest.raises(ValueError, match="numba"):
        make_converter("numba", "float32")
    with pytest.raises(ValueError, match="cascade"):
        substep_function("torch", None, cascade="fast")


def test_an_env_does_not_depend_on_its_batch():
    """Each env's oracle reads its own pool before the cascade, so an env's outcome is the same
    alone and inside a batch whose other envs liquidate. This case (found by a random search)
    once coupled them: env 0's borrowers move its pool after the market update while other envs
    liquidate. Batched, fused and alone must agree."""
    params = EngineParams(market=MarketParams(oracle_kind="exact", pool_depth_usd=20e6))
    envs, positions, steps = 8, 64, 12
    drivers = scenarios.get("shock").drivers(envs, steps, params, 2, {"drop_frac": "0.4"})
    conv = make_converter("numpy")
    sim = Simulator(params, drivers, positions, 2)
    batch = fused = sim.state
    alone = sim.state.select(np.arange(envs) == 0)
    rng = np.random.default_rng(2)
    for t in range(steps):
        row = drivers.row(t, conv)
        row0 = type(row)(**{f.name: getattr(row, f.name)[:1] for f in dataclasses.fields(row)})
        u = rng.random((envs, positions))
        batch, rounds = substep(batch, row, u, params)
        fused, fused_rounds = fused_substep(fused, row, u, params)
        alone, alone_rounds = substep(alone, row0, u[:1], params)
        np.testing.assert_array_equal(rounds, fused_rounds)
        assert rounds[0] == alone_rounds[0]
    _compare(batch, fused)
    _compare(batch.select(np.arange(envs) == 0), alone)
    assert batch.liquidations[1:].sum() > 0  # the other envs do liquidate


def test_fused_many_tied_candidates_and_binding_capacity():
    """Many identical positions (equal profits: ties go to the lower slot) and more of them
    liquidatable than keepers can take, so the kernel's long-list sort is used."""
    from levgym.engine.state import from_book

    from .helpers import quiet_params

    params = quiet_params(pool_depth_usd=5e6, keeper_capacity_per_substep=40.0)
    coll = np.full((2, 120), 10.0)
    debt = np.full((2, 120), 10 * 100 * 0.86 / 1.02)
    debt[1, ::3] *= 0.5  # env 1: a third healthy, the others tied
    prices = np.array([[100.0, 100.0], [90.0, 88.0], [85.0, 84.0]])
    drivers = Drivers.from_price(prices, arb_speed_frac=1.0, gas_gwei=0.0)
    state = from_book(params, coll, debt, prices[0])
    conv = make_converter("numpy")
    fused = slow = state
    for t in range(3):
        row = drivers.row(t, conv)
        u = np.full((2, 120), 0.9)
        slow, slow_rounds = reference_substep(slow, row, u, params)
        fused, fused_rounds = fused_substep(fused, row, u, params)
        np.testing.assert_array_equal(fused_rounds, slow_rounds)
        _compare(fused, slow)
    assert float(fused.liquidations[0]) >= 40.0  # capacity bound at least once
    # ties: in the first liquidating substep the lowest slots went first
    assert fused.ever_liquidated[0, :40].all()


@pytest.mark.parametrize("cap_usd", [1e6, 5e7])
def test_fused_borrow_cap_and_arrivals(cap_usd):
    """Arrivals and relevering loopers asking for more than the borrow cap leaves: the shared
    scale-down of new borrowing."""
    params = EngineParams(
        protocol=ProtocolParams(borrow_cap_usd=cap_usd),
        borrowers=BorrowerParams(
            arrival_rate_per_h=0.5, initial_active_frac=0.5, looper_frac=0.5, passive_frac=0.2
        ),
    )
    drivers = scenarios.get("calm").drivers(3, 12, params, 4, {})
    a = Simulator(params, drivers, 40, 4, backend="numpy")
    b = Simulator(params, drivers, 40, 4, backend="numba")
    for _ in range(12):
        a.substep()
        b.substep()
    _compare(a.state, b.state)
    assert float(np.sum(a.state.arrivals)) > 0


def _fresh_pack(state):
    """``state`` with every env field copied, so no row is one the kernel returned last."""
    from levgym.engine.fused import ENV_FIELDS

    return state.replace(**{n: np.array(getattr(state, n), copy=True) for n in ENV_FIELDS})


def test_fused_repacking_from_its_last_output_equals_a_fresh_pack():
    """The kernel repacks the env fields by copying its last packed array when the state hands
    back its own rows: chained substeps, a parameter replaced between them, a row written in
    place, and an older state stepped again all equal the same substeps from fresh copies."""
    from levgym.engine import fused

    params = EngineParams()
    drivers = scenarios.get("shock").drivers(
        3, 8, params, 5, {"drop_frac": "0.4", "drop_hours": "0.5"}
    )
    sim = Simulator(params, drivers, 32, 5)
    rows = list(numpy_rows(drivers))
    state = sim.state
    inputs, outputs, hits = [], [], 0
    for t, row in enumerate(rows):
        if t == 2:
            state = state.replace(liquidation_bonus=np.full(3, 0.08))
        if t == 4:
            state.ltv[1] = 0.5  # an in-place write into a row the kernel returned
        last = fused._LAST_PACKED
        hits += (
            last is not None and state.oracle_usd is last[1][fused.ENV_FIELDS.index("oracle_usd")]
        )
        inputs.append(state.to_numpy())  # copies: a later in-place write must not reach them
        state, rounds = fused_substep(state, row, sim.noise_at(t), params)
        outputs.append((state.to_numpy(), rounds))
    assert hits >= len(rows) - 1  # the chain did take the copy path
    again = fused_substep(inputs[5], rows[5], sim.noise_at(5), params)  # an older state
    for t, (got, got_rounds) in enumerate([*outputs, again]):
        t_in = 5 if t == len(rows) else t
        want, want_rounds = fused_substep(
            _fresh_pack(inputs[t_in]), rows[t_in], sim.noise_at(t_in), params
        )
        _compare(got, want, rtol=0.0)
        np.testing.assert_array_equal(got_rounds, want_rounds)


def test_state_replace_equals_dataclasses_replace():
    params = EngineParams()
    drivers = scenarios.get("calm").drivers(2, 2, params, 1, {})
    state = Simulator(params, drivers, 8, 1).state
    new = state.replace(ltv=np.full(2, 0.5), time_h=3.0)
    ref = dataclasses.replace(state, ltv=np.full(2, 0.5), time_h=3.0)
    assert type(new) is type(ref)
    for f in dataclasses.fields(state):
        assert getattr(new, f.name) is getattr(ref, f.name) or f.name == "ltv", f.name
    np.testing.assert_array_equal(new.ltv, ref.ltv)
    assert state.ltv is not new.ltv and new.time_h == 3.0
    with pytest.raises(TypeError, match="no_such_field"):
        state.replace(no_such_field=1.0)


@pytest.mark.parametrize("pool_weight", [0.0, 1.0])
def test_fused_later_rounds_from_the_candidate_list(pool_weight):
    """Cascades past round 1: with an oracle that ignores the pool (weight 0) the kernel
    re-tests only the last round's candidates, with one that reads it (weight 1) the oracle moves
    between rounds and every position is scanned again; both equal the reference loop round for
    round, and positions far from liquidation stay untouched."""
    from levgym.engine.state import from_book

    from .helpers import quiet_params

    params = quiet_params(pool_depth_usd=2e6, oracle_pool_weight_frac=pool_weight)
    rng = np.random.default_rng(7)
    coll = np.full((3, 96), 10.0)
    hf0 = rng.uniform(1.0, 1.6, size=(3, 96))  # health factors at the first price
    debt = coll * 100.0 * 0.86 / hf0
    prices = np.array([[100.0] * 3, [88.0, 86.0, 90.0], [80.0, 78.0, 84.0]])
    drivers = Drivers.from_price(prices, arb_speed_frac=0.2, gas_gwei=0.0)
    state = from_book(params, coll, debt, prices[0])
    conv = make_converter("numpy")
    fused = slow = state
    most = 0.0
    for t in range(3):
        row = drivers.row(t, conv)
        u = np.full((3, 96), 0.9)
        slow, slow_rounds = reference_substep(slow, row, u, params)
        fused, fused_rounds = fused_substep(fused, row, u, params)
        np.testing.assert_array_equal(fused_rounds, slow_rounds)
        _compare(fused, slow)
        most = max(most, float(np.max(fused_rounds)))
    assert most >= 2.0  # later rounds ran (round 2 lists its candidates, round 3 finds none)
    assert not fused.ever_liquidated.all()  # and some positions were never candidates
