"""The spoofing family's settings: `[spoofing_l3]` and `[spoofing_l2]`.

They sit beside the detectors that read them; `tapewatch.config` composes them into the
settings a run loads (TOML sections and environment variables are named there).
"""

from __future__ import annotations

from pydantic import Field

from tapewatch.sections import Section


class SpoofingL3Settings(Section):
    """Spoofing and layering on L3 order events (account ids and order ids) and trades naming accounts."""

    baseline_min: float = Field(
        60.0,
        gt=0,
        description="trailing window of the symbol's typical order, and of the account's typical execution "
        "and how often it executes",
    )
    min_baseline_orders: int = Field(
        20,
        ge=1,
        description="orders the symbol's trailing baseline must hold before an order is judged against it "
        "(a partial baseline is causal; a handful of orders is not a typical size)",
    )
    min_book_ratio: float = Field(
        2.0,
        gt=0,
        description="an episode's largest order: notional / the symbol's typical order notional (geometric mean)",
    )
    min_layer_ratio: float = Field(
        1.2,
        gt=0,
        description="every order of an episode: notional / the symbol's typical order notional (the deeper "
        "layers of a stack are often smaller)",
    )
    max_life_s: float = Field(
        60.0,
        gt=0,
        description="spoof orders are cancelled within this many seconds of placement (bait is pulled "
        "within seconds; honest big orders are pulled quickly too: how close the pull sits to the "
        "account's own execution, against chance, is what tells them apart)",
    )
    max_episode_s: float = Field(
        120.0, gt=0, description="longest span of one episode (first placement to last cancel)"
    )
    max_fill_ratio: float = Field(
        0.1, ge=0, le=1, description="filled share of the episode's large orders, at most"
    )
    cancel_after_exec_s: float = Field(
        30.0,
        gt=0,
        description="an execution while the orders rest ties the episode when the first cancel after it "
        "follows within this many seconds (a wide net: `max_chance` judges how close is close)",
    )
    exec_after_cancel_s: float = Field(
        30.0,
        ge=0,
        description="an opposite execution this many seconds at most after the last cancel also ties the "
        "episode (pulled first, then traded the other way); 0 turns this off",
    )
    book_window_min: float = Field(
        10.0, gt=0, description="the touch is rebuilt from orders placed within this many minutes"
    )
    max_depth_ahead: float = Field(
        4.0,
        ge=0,
        description="others' displayed amount resting at better prices than the episode's nearest order, "
        "as a multiple of the episode's own amount, beyond which the episode's chance is multiplied by the "
        "cube of the excess (ratio / this): bait near the touch stands out in the book, an order behind a "
        "wall of others' orders presses on little, yet a clearly tied pattern is not vetoed by the book "
        "alone. Judged on the book itself, not on a count of levels, which a book of many small orders "
        "fills at once",
    )
    min_layers: int = Field(
        3, ge=2, description="orders resting at once that, over several levels, make it layering"
    )
    warmup_min: float = Field(
        15.0,
        ge=0,
        description="no decision until a symbol has this much history: sizes can be judged on a partial "
        "baseline (`min_baseline_orders`), but an account's pattern of tied cancels cannot",
    )
    pattern_min: float = Field(
        60.0, gt=0, description="trailing window of the account's large quick cancels judged together"
    )
    timing_floor_s: float = Field(
        1.0,
        gt=0,
        description="an opposite execution closer to the pull than this is judged as this close "
        "(timestamps and reactions are not finer than that)",
    )
    recent_min: float = Field(
        10.0,
        gt=0,
        description="the share of the account's time near its executions is also measured over "
        "this recent stretch, and the larger share counts: an account busy right now (a pump, a burst) "
        "sits next to its executions by chance more often than its last hour shows",
    )
    max_chance: float = Field(
        0.02,
        gt=0,
        le=1,
        description="how likely chance alone gives the account's pattern to any of the symbol's accounts "
        "judged that hour, at most: its pulls landing as close to its opposite executions as they did (a "
        "pull is that close by chance as often as the account's own recent time is to one of its "
        "executions, on either side: an account trading both ways re-prices after every fill), over its "
        "recent large quick cancels (untied ones lower the evidence, none vetoes it), times the accounts "
        "with spoof-shaped episodes on the symbol over `pattern_min` that could have reached this bound "
        "(Bonferroni with Tarone's count). A market maker trading both sides all day ties its pulls to "
        "executions by chance, and among a hundred traders pulling big orders one ties a pull by chance "
        "every hour; a spoofer ties them on purpose",
    )


class SpoofingL2Settings(Section):
    """Spoofing and layering on public L2 book updates and trades (no account ids: low confidence)."""

    baseline_min: float = Field(
        60.0, gt=0, description="trailing window of the typical size added near the touch on each side"
    )
    level_memory_min: float = Field(
        30.0,
        gt=0,
        description="a level not updated this recently counts as empty, so a stream's tail reads the book "
        "like the batch",
    )
    near_levels: int = Field(
        5,
        ge=1,
        description="an addition is near the touch with fewer better levels than this on its side; the "
        "imbalance compares the depth of this many best levels per side",
    )
    min_add_ratio: float = Field(
        2.0,
        gt=0,
        description="an addition / the typical addition near the touch on its side (geometric mean)",
    )
    min_removed_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="one decrease of the level removes at least this share of the addition, and prints at "
        "its price took at most the rest (pulled, not traded)",
    )
    max_life_s: float = Field(60.0, gt=0, description="the addition is pulled within this many seconds")
    max_cycle_s: float = Field(120.0, gt=0, description="longest span of one cycle of overlapping additions")
    min_far_prints: int = Field(
        3,
        ge=1,
        description="prints on the far side of the book (buys for a bid addition) while an addition rests",
    )
    cancel_after_exec_s: float = Field(
        3.0, gt=0, description="an addition is pulled within this many seconds of the last far-side print"
    )
    min_swing: float = Field(
        0.2,
        gt=0,
        le=2,
        description="the top-level imbalance toward the cycle's side rises at least this much when the "
        "additions appear and falls at least this much once they are pulled (imbalance in -1…1)",
    )
    mirror_pad_s: float = Field(
        1.0,
        ge=0,
        description="a large addition on the other side within this many seconds of an addition marks "
        "two-sided (market-maker) quoting: it does not count",
    )
    min_repeats: int = Field(
        4, ge=1, description="pulled additions in qualifying cycles on one side within the repeat window"
    )
    repeat_window_min: float = Field(10.0, gt=0, description="window in which the cycles must repeat")
    min_layers: int = Field(
        3, ge=2, description="distinct price levels in one cycle that make it layering rather than spoofing"
    )
    warmup_min: float = Field(15.0, ge=0, description="no decision until a symbol has this much history")
    max_score: float = Field(
        0.6, gt=0, le=1, description="score ceiling: without account ids the pattern is circumstantial"
    )
