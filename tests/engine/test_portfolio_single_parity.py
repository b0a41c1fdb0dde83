"""K = 1: the multi-asset market step with one collateral (WETH) and one debt asset (USDC),
configured as the single-asset engine, equals a whole :func:`levgym.engine.step.substep` to
1e-12 (prices, pool, oracle, interest, the cascade's calls, seized and repaid amounts, the
keepers' result, bad debt), from the states the single-asset engine passes through on a shock.

The mapping is :mod:`levgym.engine.portfolio_single` (``single_reserves``,
``single_market_params``, ``from_single_state``, ``substep_drivers``). What it aligns, and why
(docs/cross-margin.md, "Agreement with the single-asset engine"): the oracle kind (``exact``, ``chainlink`` or ``twap``: the WETH reserve's feed takes the
single-asset oracle's settings and state); the keepers' settings (``KEEPERS``: the single-asset
defaults with capacity, gas, chunks and the profitability filter, a binding capacity, binding
chunks, and none of them), which both engines apply by one selection rule (profit rank, each
call priced after the ones ranked above it); passive borrowers without arrivals or exits; the
reserves' LT, LTV, bonus, protocol fee, rate curve and reserve factor set to the single
engine's. The close factor (50 %, all at HF <= 0.95 or under $2,000) and the v3.3 leftover rule
agree on one pair at LT 0.86 and bonus 5.2 % (docs). What is left different is stated where it
shows: the single engine's bad debt is paid by its reserves, then lenders
(``write_off_split``), the portfolio keeps it as the reserve's deficit; so the two are compared
one substep at a time from the same state.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from levgym import scenarios
from levgym.engine import portfolio_market as PM
from levgym.engine import portfolio_single as PS
from levgym.engine.aave_v3_ethereum import aave_v3_ethereum_reserves
from levgym.engine.params import PRESETS, EngineParams
from levgym.engine.rules import DEFENSIVE
from levgym.engine.state import init_state
from levgym.engine.step import substep as single_substep

TOL = 1e-12


KEEPERS = {
    # no capacity limit, no gas, no filter (the configuration before the keepers' rules were shared)
    "bare": dict(
        keeper_capacity_per_substep=1e9,
        profitability_filter=False,
        gas_units_per_liquidation=0.0,
        keeper_max_slippage_frac=1.0,
    ),  # fmt: skip
    # the single-asset defaults: capacity 200 a substep, 400,000 gas a call, the filter on, calls
    # sized to move the pool by at most 2 %
    "defaults": {},
    # a capacity that binds (4 a substep, halved at 150 gwei against the 100 gwei reference)
    "tight": dict(keeper_capacity_per_substep=4.0),
    # chunks that bind: a call seizes at most 0.1 % of the pool's asset (about $60,000)
    "chunks": dict(keeper_max_slippage_frac=0.001),
}
"""The single-asset keeper settings compared (``market.*``)."""
GAS_GWEI = {"bare": "30", "defaults": "30", "tight": "150", "chunks": "30"}


def _single_params(
    oracle_kind: str = "exact", keepers: str = "bare", defensive_frac: float = 0.0
) -> EngineParams:
    p = EngineParams()
    return dataclasses.replace(
        p,
        market=dataclasses.replace(p.market, oracle_kind=oracle_kind, **KEEPERS[keepers]),
        borrowers=dataclasses.replace(
            p.borrowers,
            passive_frac=1.0 - defensive_frac,
            defensive_frac=defensive_frac,
            looper_frac=0.0,
            arrival_rate_per_h=0.0,
            exit_rate_per_h=0.0,
            total_collateral_usd=3e6,
        ),
    )


def _reserves(p: EngineParams):
    """The K = 1 reserves of ``p`` (:func:`levgym.engine.portfolio_single.single_reserves`)."""
    return PS.single_reserves(p)


def _portfolio_params(p: EngineParams, arb_speed: float) -> PM.PortfolioMarketParams:
    """The asset-axis step's market parameters under ``p``'s rules
    (:func:`levgym.engine.portfolio_single.single_market_params`), arbitrage at ``arb_speed``."""
    return dataclasses.replace(PS.single_market_params(p), arb_speed_frac=arb_speed)


V33_CLOSE = ("close_factor", "full_close_hf", "min_close_usd", "min_close_by", "leftover_usd")
"""The asset-axis step's close terms, v3.3's by default."""


def _v33_close(params: PM.PortfolioMarketParams) -> PM.PortfolioMarketParams:
    """``params`` with v3.3's close factor and leftover rule (the step's defaults) instead of
    the single engine's."""
    v33 = PM.PortfolioMarketParams()
    return dataclasses.replace(params, **{k: getattr(v33, k) for k in V33_CLOSE})


def _start_state(p: EngineParams, drivers, e: int, n: int):
    """The single engine's start state of ``e`` envs x ``n`` slots at ``drivers``' first row
    (the book of seed ``[3, 0]``)."""
    return init_state(
        p, e, n, np.random.default_rng([3, 0]),
        fundamental_usd=drivers.fundamental_usd[0], debt_price_usd=drivers.debt_price_usd[0],
        liquidity_frac=drivers.liquidity_frac[0], gas_gwei=drivers.gas_gwei[0],
    )  # fmt: skip


def _case(
    oracle_kind, keepers, start_hour, drop_hours, drop_frac, deficit_cover="none",
    defensive_frac=0.0,
):  # fmt: skip
    """The single engine's parameters, its driver rows on the shock, the matching reserves and
    market parameters, and its start state."""
    p = _single_params(oracle_kind, keepers, defensive_frac)
    # a TWAP lags the fall: its calls start once the window has caught up (about 8 substeps)
    e, n, steps = 6, 64, 16 if oracle_kind == "twap" else 8
    knobs = {"start_hour": start_hour, "drop_hours": drop_hours, "drop_frac": drop_frac}
    drivers = scenarios.get("shock").drivers(
        e, steps, p, 3, {**knobs, "gas_gwei": GAS_GWEI[keepers]}
    )
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    # the portfolio step reads one arbitrage speed, no liquidity change and no oracle bias
    assert np.all(drivers.arb_speed_frac == drivers.arb_speed_frac[0, 0])
    assert np.all(drivers.liquidity_frac == 1.0) and np.all(drivers.oracle_bias_frac == 0.0)
    assert not np.any(drivers.oracle_frozen)
    res = _reserves(p)
    params = _portfolio_params(p, float(drivers.arb_speed_frac[0, 0]))
    params = dataclasses.replace(params, deficit_cover=deficit_cover)
    s = _start_state(p, drivers, e, n)
    return p, rows, res, params, s


CASES = [(oracle, keepers) for keepers in KEEPERS for oracle in ("exact", "chainlink", "twap")]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), CASES)
@pytest.mark.parametrize(
    ("start_hour", "drop_hours", "drop_frac"), [("0", "1", "0.4"), ("0.4", "0.05", "0.3")]
)
def test_one_collateral_one_debt_equals_the_single_asset_substep(
    backend, oracle_kind, keepers, start_hour, drop_hours, drop_frac
):
    """A fall over an hour (partial closes, multi-round cascades) and a 30 % jump within one
    substep (positions left without collateral: bad debt), under the single engine's keeper
    settings ``KEEPERS`` (capacity by profit rank, gas per call, the profitability filter priced
    in the block) and its oracle kinds."""
    p, rows, res, params, s = _case(oracle_kind, keepers, start_hour, drop_hours, drop_frac)
    e, n = s.collateral_asset.shape
    steps = len(rows)
    w, u = res.index("WETH"), res.index("USDC")
    calls = bad = 0.0
    max_rounds = most_calls = 0
    chunked = False
    whole = dataclasses.replace(p, market=dataclasses.replace(p.market, keeper_max_slippage_frac=1))
    for t in range(steps):
        ps = PS.from_single_state(s, res, params)
        f = np.stack([rows[t].fundamental_usd, rows[t].debt_price_usd], axis=1)
        noise = np.random.default_rng([3, 1, t]).random((e, n))
        s2, r_single = single_substep(s, rows[t], noise, p)
        if keepers == "chunks":  # the chunks change the single engine's calls on this path
            s_whole, _ = single_substep(s, rows[t], noise, whole)
            chunked |= not np.allclose(s_whole.collateral_asset, s2.collateral_asset)
        ps2, r_port = PM.substep(ps, f, res, params, backend=backend, gas_gwei=rows[t].gas_gwei)
        np.testing.assert_array_equal(r_port, r_single)

        def close(a, b):
            np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * max(np.max(np.abs(b)), 1.0))

        close(ps2.oracle_usd[:, w], s2.oracle_usd)
        close(ps2.pool_asset[:, w], s2.pool_asset)
        close(ps2.pool_quote[:, w], s2.pool_debt)
        close(ps2.supply[..., w], s2.collateral_asset)
        close(ps2.debt[..., u], s2.debt_usd)
        c = ps2.counters
        close(c["interest_asset"][:, u], s2.interest_usd - s.interest_usd)
        close(c["treasury_interest_asset"][:, u], s2.reserve_income_usd - s.reserve_income_usd)
        close(ps2.liquidations, s2.liquidations - s.liquidations)
        close(c["seized_collateral_asset"][:, w], s2.seized_collateral_asset - s.seized_collateral_asset)  # fmt: skip
        close(c["protocol_fee_asset"][:, w], s2.protocol_fee_asset - s.protocol_fee_asset)
        close(c["repaid_by_liquidators_asset"][:, u], s2.repaid_by_liquidators_usd - s.repaid_by_liquidators_usd)  # fmt: skip
        close(c["sold_asset"][:, w], s2.keeper_sold_asset - s.keeper_sold_asset)
        close(ps2.keeper_pnl_usd, s2.keeper_profit_usd - s.keeper_profit_usd)
        close(c["deficit_asset"][:, u], s2.bad_debt_usd - s.bad_debt_usd)
        calls += float(np.sum(s2.liquidations - s.liquidations))
        most_calls = max(most_calls, int(np.max(s2.liquidations - s.liquidations)))
        max_rounds = max(max_rounds, int(r_port.max()))
        bad += float(np.sum(s2.bad_debt_usd - s.bad_debt_usd))
        s = s2
    # the cascades were compared, not only the market: calls, several rounds, and for the jump
    # positions left without collateral
    if keepers == "tight":  # the capacity bound: floor(4 * 100 / 150) = 2 calls a substep
        assert most_calls == 2
    elif keepers == "chunks":
        assert chunked and calls > 0
    else:
        assert calls > 0 and max_rounds >= 2
    if drop_hours == "0.05" and (oracle_kind, keepers) != ("twap", "bare"):
        assert bad > 0  # (the one case without: no position runs out of collateral on its path)


def _run_both(p, rows, res, params, s, backend, block=None):
    """Step the single state ``s`` and its portfolio twin (converted once by
    :func:`levgym.engine.portfolio_single.from_single_state`: the USDC treasury at the single
    engine's ``reserves_usd``, its defensive and looping slots;
    ``params.deficit_cover="reserves_then_lenders"``) through ``rows`` with the same uniforms
    and the rows' drivers (:func:`levgym.engine.portfolio_single.substep_drivers`), comparing
    them after every substep to 1e-12; returns (the single state at the start, at the end, the
    portfolio state at the end). ``block(t, row)``: the single engine's orders and the
    portfolio substep's extra arguments for substep ``t`` (None: none)."""
    assert params.deficit_cover == "reserves_then_lenders"
    e, n = s.collateral_asset.shape
    w, u = res.index("WETH"), res.index("USDC")
    ps = PS.from_single_state(s, res, params)
    s0 = s

    def close(a, b, scale=1.0):
        atol = TOL * max(np.max(np.abs(b)), scale)
        np.testing.assert_allclose(a, b, rtol=TOL, atol=atol)

    for t, row in enumerate(rows):
        noise = np.random.default_rng([3, 1, t]).random((e, n))
        orders, extra = (None, {}) if block is None else block(t, row)
        s, r_single = single_substep(s, row, noise, p, orders)
        # the single engine's oracle drivers (manipulation, a stale feed) on the WETH feed and
        # its pool drivers (a liquidity drought, a slower arbitrage) on the WETH pool
        kw = PS.substep_drivers(row, res, params)
        f = kw.pop("fundamental_usd")
        ps, r_port = PM.substep(
            ps, f, res, params, backend=backend, noise_u=noise, **{**kw, **extra}
        )
        np.testing.assert_array_equal(r_port, r_single)
        if ps.active is not None:  # exits and arrivals: the same slots left and came
            np.testing.assert_array_equal(ps.active, s.active)
            np.testing.assert_array_equal(ps.arrivals, s.arrivals - s0.arrivals)
            np.testing.assert_array_equal(ps.exits, s.exits - s0.exits)
        c = ps.counters
        close(c["added_collateral_asset"][:, w], s.added_collateral_asset - s0.added_collateral_asset)  # fmt: skip
        close(c["repaid_by_borrowers_asset"][:, u], s.repaid_by_borrowers_usd - s0.repaid_by_borrowers_usd)  # fmt: skip
        close(ps.oracle_usd[:, w], s.oracle_usd)
        close(ps.pool_asset[:, w], s.pool_asset)
        close(ps.pool_quote[:, w], s.pool_debt)
        close(ps.supply[..., w], s.collateral_asset)
        close(ps.debt[..., u], s.debt_usd)
        close(ps.lender_supply_asset[:, u], s.supply_usd)
        # the treasury is what is left of the reserves after paying: rounding of the amounts
        # paid out of it (the bad debt) stays in it
        close(ps.treasury_asset[:, u], s.reserves_usd, np.max(s.bad_debt_usd - s0.bad_debt_usd))
        close(ps.liquidations, s.liquidations - s0.liquidations)
        close(ps.keeper_pnl_usd, s.keeper_profit_usd - s0.keeper_profit_usd)
        close(c["interest_asset"][:, u], s.interest_usd - s0.interest_usd)
        close(c["protocol_fee_asset"][:, w], s.protocol_fee_asset - s0.protocol_fee_asset)
        close(c["deficit_asset"][:, u], s.bad_debt_usd - s0.bad_debt_usd)
        close(c["deficit_covered_asset"][:, u], s.bad_debt_from_reserves_usd - s0.bad_debt_from_reserves_usd)  # fmt: skip
        close(c["lender_loss_asset"][:, u], s.lender_loss_usd - s0.lender_loss_usd)
    return s0, s, ps


RUN_CASES = [("exact", "bare"), ("chainlink", "defaults"), ("twap", "defaults"), ("chainlink", "chunks")]  # fmt: skip
"""Oracle kinds and keeper settings of the chained runs (a subset of :data:`CASES`)."""


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), RUN_CASES)
@pytest.mark.parametrize(
    ("start_hour", "drop_hours", "drop_frac"), [("0", "1", "0.4"), ("0.4", "0.05", "0.3")]
)
def test_a_run_with_reserves_then_lenders_equals_the_single_asset_run(
    backend, oracle_kind, keepers, start_hour, drop_hours, drop_frac
):
    """With ``deficit_cover="reserves_then_lenders"`` (the single engine's bad-debt accounting:
    the reserve's treasury first, then its lenders) the portfolio state is converted once, at the
    start, and stepped on its own: after every substep it equals the single engine's state to
    1e-12, the lenders' supply, the treasury (the single engine's ``reserves_usd``) and who paid
    the bad debt included, so the next substep's utilization and interest agree too."""
    p, rows, res, params, s = _case(
        oracle_kind, keepers, start_hour, drop_hours, drop_frac, "reserves_then_lenders"
    )
    # reserves of 0.001 % of the debt (not 1 %), so that the jump's bad debt exhausts them and
    # the lenders pay the rest
    s0, s, _ = _run_both(
        p, rows, res, params, s.replace(reserves_usd=s.reserves_usd * 1e-3), backend
    )
    assert s.liquidations.sum() > 0
    if drop_hours == "0.05":  # the jump leaves positions without collateral: both payers pay
        assert np.sum(s.bad_debt_from_reserves_usd - s0.bad_debt_from_reserves_usd) > 0
        assert np.sum(s.lender_loss_usd - s0.lender_loss_usd) > 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults")])
def test_a_debt_depeg_above_the_stablecoin_cap_with_a_market_usdc_oracle(
    backend, oracle_kind, keepers
):
    """``dai_depeg`` (the debt asset trades up to 1.126 USD, here within the first hours): the
    single engine prices the debt at 1.126, above CAPO's 1.04 cap of the preset's USDC oracle
    (``stable_market``). With the USDC reserve's oracle ``kind="market"`` the run equals the
    single engine's to 1e-12 (liquidations from the debt's rise included); with the capped
    oracle it does not."""
    p = _single_params(oracle_kind, keepers)
    e, n, steps = 6, 64, 12
    knobs = {"start_h": "0", "rise_h": "0.5", "hold_h": "1", "fall_h": "0.5"}
    drivers = scenarios.get("dai_depeg").drivers(e, steps, p, 3, {**knobs, "gas_gwei": GAS_GWEI[keepers]})  # fmt: skip
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    assert np.all(drivers.arb_speed_frac == drivers.arb_speed_frac[0, 0])
    assert np.all(drivers.liquidity_frac == 1.0) and np.all(drivers.oracle_bias_frac == 0.0)
    assert drivers.debt_price_usd.max() > 1.1  # above the cap of 1.04
    res = _reserves(p)
    assert res.reserves[res.index("USDC")].oracle.kind == "market"
    preset_usdc = aave_v3_ethereum_reserves(("USDC",)).reserves[0].oracle
    assert preset_usdc.kind == "stable_market"
    capped = res.replace("USDC", oracle=preset_usdc)
    params = _portfolio_params(p, float(drivers.arb_speed_frac[0, 0]))
    s = _start_state(p, drivers, e, n)
    s0, s1, ps = _run_both(p, rows, res, params, s, backend)
    assert np.sum(s1.liquidations - s0.liquidations) > 0  # the debt's rise liquidated positions
    # the preset's capped USDC oracle sees the debt at 1.04 and liquidates less
    u = capped.index("USDC")
    pc = PS.from_single_state(s0, capped, params)
    for row in rows:
        f = np.stack([row.fundamental_usd, row.debt_price_usd], axis=1)
        pc, _ = PM.substep(pc, f, capped, params, backend=backend, gas_gwei=row.gas_gwei)
    assert pc.oracle_usd[:, u].max() == pytest.approx(1.04)
    assert pc.liquidations.sum() < ps.liquidations.sum()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), RUN_CASES)
@pytest.mark.parametrize(
    ("start_hour", "drop_hours", "drop_frac"), [("0", "1", "0.4"), ("0.4", "0.05", "0.3")]
)
def test_a_run_with_the_single_engines_defensive_borrowers(
    backend, oracle_kind, keepers, start_hour, drop_hours, drop_frac
):
    """The single engine's defensive borrowers (30 % of the slots, the rest passive): each
    defender below its trigger reacts with its probability (uniform 0.05-0.5) over
    ``1 + gas / 150 gwei``, on the substep's uniform, and tops up or repays to
    ``trigger + 0.3`` with unlimited funds. Given the same uniforms and the single state's
    behaviours, the portfolio step's borrower phase makes the same top-ups and repayments, and
    the run equals the single engine's to 1e-12."""
    p, rows, res, params, s = _case(
        oracle_kind, keepers, start_hour, drop_hours, drop_frac, "reserves_then_lenders", 0.3
    )
    assert np.any(s.kind == DEFENSIVE)
    s0, s1, ps = _run_both(p, rows, res, params, s, backend)
    # the defenders acted, on both sides: both kinds of defence
    assert np.sum(s1.added_collateral_asset - s0.added_collateral_asset) > 0
    assert np.sum(s1.repaid_by_borrowers_usd - s0.repaid_by_borrowers_usd) > 0
    assert s1.liquidations.sum() > 0
    # the probabilities bind: with every defender reacting every substep the borrowers do more
    w, u = res.index("WETH"), res.index("USDC")
    always = PS.from_single_state(s0, res, params).replace(defend_react_prob=None)
    for row in rows:
        f = np.stack([row.fundamental_usd, row.debt_price_usd], axis=1)
        always, _ = PM.substep(always, f, res, params, backend=backend, gas_gwei=row.gas_gwei)
    c, ca = ps.counters, always.counters
    done = c["added_collateral_asset"][:, w].sum() + c["repaid_by_borrowers_asset"][:, u].sum()
    more = ca["added_collateral_asset"][:, w].sum() + ca["repaid_by_borrowers_asset"][:, u].sum()
    assert more > done * 1.01


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("preset", ["aave_v2_weth", "aave_v3_weth_comet_params", "conservative"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults")])
@pytest.mark.parametrize(
    ("start_hour", "drop_hours", "drop_frac"), [("0", "1", "0.4"), ("0.4", "0.05", "0.3")]
)
def test_a_run_under_the_single_presets_close_factors(
    backend, preset, oracle_kind, keepers, start_hour, drop_hours, drop_frac
):
    """The single-asset protocol presets' liquidation terms (``params.PRESETS``:
    ``aave_v2_weth``: 50 % always, no full close, no small-position rule, no protocol fee;
    ``aave_v3_weth_comet_params``: the whole debt in one call; ``conservative``: LT 0.75, bonus
    7.5 %), with the single engine's defensive borrowers: the asset-axis step with the
    preset's ``close_factor``, ``full_close_hf``, ``min_close_usd`` on the position's debt and no
    leftover rule equals the single engine's run to 1e-12 (the preset's LT, LTV, bonus, fee and
    rate curve on the reserves as in the other cases). v3.3's own close factor does not (the
    calls differ), so the options are what makes these presets agree."""
    p0 = _single_params(oracle_kind, keepers, 0.3)
    p = dataclasses.replace(p0, protocol=PRESETS[preset])
    e, n, steps = 6, 64, 8
    knobs = {"start_hour": start_hour, "drop_hours": drop_hours, "drop_frac": drop_frac}
    drivers = scenarios.get("shock").drivers(
        e, steps, p, 3, {**knobs, "gas_gwei": GAS_GWEI[keepers]}
    )
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    res = _reserves(p)
    params = _portfolio_params(p, float(drivers.arb_speed_frac[0, 0]))
    base = _v33_close(params)
    s = _start_state(p, drivers, e, n)
    s0, s1, ps = _run_both(p, rows, res, params, s, backend)
    assert np.sum(s1.liquidations - s0.liquidations) > 0
    if preset != "conservative":  # v3.3's close factor makes other calls on these presets
        u = res.index("USDC")
        v33 = PS.from_single_state(s0, res, base)
        for t, row in enumerate(rows):
            f = np.stack([row.fundamental_usd, row.debt_price_usd], axis=1)
            noise = np.random.default_rng([3, 1, t]).random((e, n))
            v33, _ = PM.substep(
                v33, f, res, base, backend=backend, gas_gwei=row.gas_gwei, noise_u=noise
            )
        assert not np.allclose(v33.counters["repaid_by_liquidators_asset"][:, u], ps.counters["repaid_by_liquidators_asset"][:, u], rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults"), ("twap", "defaults")])  # fmt: skip
@pytest.mark.parametrize(
    ("scenario", "knobs"),
    [
        ("oracle_manipulation", {"bias_start_h": "0.5", "bias_hours": "0.5"}),
        (
            "oracle_frozen",
            {
                "start_hour": "0",
                "drop_hours": "1",
                "drop_frac": "0.4",
                "freeze_start_h": "0.2",
                "freeze_hours": "0.6",
            },
        ),  # fmt: skip
    ],
)
def test_a_run_with_the_single_engines_oracle_drivers(
    backend, oracle_kind, keepers, scenario, knobs
):
    """``oracle_manipulation`` (the collateral oracle reports 23 % low for half an hour) and
    ``oracle_frozen`` (a 40 % fall while the feed is stale for 0.6 h, then it catches up): the
    single engine's ``oracle_bias_frac`` and ``oracle_frozen`` drivers given to the WETH feed
    (``substep(oracle_bias_frac=, oracle_held=)``), with its defensive borrowers: the run equals
    the single engine's to 1e-12, and without the drivers it does not."""
    p = _single_params(oracle_kind, keepers, 0.3)
    e, n, steps = 6, 64, 16 if oracle_kind == "twap" else 10
    drivers = scenarios.get(scenario).drivers(e, steps, p, 3, {**knobs, "gas_gwei": GAS_GWEI[keepers]})  # fmt: skip
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    assert np.all(drivers.arb_speed_frac == drivers.arb_speed_frac[0, 0])
    assert np.all(drivers.liquidity_frac == 1.0)
    assert np.any(drivers.oracle_bias_frac != 0.0) or np.any(drivers.oracle_frozen)
    res = _reserves(p)
    params = _portfolio_params(p, float(drivers.arb_speed_frac[0, 0]))
    s = _start_state(p, drivers, e, n)
    s0, s1, ps = _run_both(p, rows, res, params, s, backend)
    w, u = res.index("WETH"), res.index("USDC")
    # without the drivers the oracle, and with it the run, is another
    plain = PS.from_single_state(s0, res, params)
    for t, row in enumerate(rows):
        f = np.stack([row.fundamental_usd, row.debt_price_usd], axis=1)
        noise = np.random.default_rng([3, 1, t]).random((e, n))
        plain, _ = PM.substep(
            plain, f, res, params, backend=backend, gas_gwei=row.gas_gwei, noise_u=noise
        )
    if oracle_kind != "twap" or scenario == "oracle_manipulation":
        assert not np.allclose(plain.counters["repaid_by_liquidators_asset"][:, u] + plain.counters["added_collateral_asset"][:, w], ps.counters["repaid_by_liquidators_asset"][:, u] + ps.counters["added_collateral_asset"][:, w], rtol=1e-9)  # fmt: skip


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(("oracle_kind", "keepers"), [("exact", "bare"), ("chainlink", "defaults"), ("twap", "defaults")])  # fmt: skip
def test_a_run_with_the_single_engines_pool_drivers(backend, oracle_kind, keepers):
    """``liquidity_drought`` (the pool's liquidity falls to a fraction over hours and arbitrage
    slows with it) during a fall: the single engine's ``liquidity_frac`` and ``arb_speed_frac``
    drivers given to the WETH pool (``substep(liquidity_frac=, arb_speed_frac=)``, the pool
    reset to ``pool_liquidity_base * liquidity_frac`` each substep by ``rules.set_liquidity``),
    with its defensive borrowers: the run equals the single engine's to 1e-12."""
    p = _single_params(oracle_kind, keepers, 0.3)
    e, n, steps = 6, 64, 16 if oracle_kind == "twap" else 10
    knobs = {"start_hour": "0", "drop_hours": "1.5", "drop_frac": "0.4"}
    drivers = scenarios.get("liquidity_drought").drivers(e, steps, p, 3, {**knobs, "gas_gwei": GAS_GWEI[keepers]})  # fmt: skip
    rows = [drivers.row(t, np.asarray) for t in range(steps)]
    assert drivers.liquidity_frac.min() < 0.9 and drivers.arb_speed_frac.min() < p.market.arb_speed_frac  # fmt: skip
    res = _reserves(p)
    params = _portfolio_params(p, p.market.arb_speed_frac)
    s = _start_state(p, drivers, e, n)
    s0, s1, ps = _run_both(p, rows, res, params, s, backend)
    assert np.sum(s1.liquidations - s0.liquidations) > 0
