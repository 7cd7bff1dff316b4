"""The Rust value area (``rust_indicators.value_area``) from Python.

Checks the specv2 §20.3 worked example, the edge cases and the error contract, and compares the
Rust function with a small pure-Python implementation of the DESIGN.md "Value area" rules on a few
hundred random histograms.
"""

from __future__ import annotations

import math
import random

import pytest

import rust_indicators

SPEC_KEYS = [49_800, 49_900, 50_000, 50_100, 50_200, 50_300]
SPEC_VOLUMES = [100.0, 250.0, 400.0, 300.0, 150.0, 50.0]

# Stop once cumulative >= va_fraction * total * (1 - REL_TOL) (same tolerance as the Rust crate).
REL_TOL = 1e-12


def reference_value_area(keys, volumes, step, va_fraction):
    """Pure-Python value area, written from the rules: (poc, val, vah, va_volume, total) or None.

    Sums run left to right in a plain loop (``sum()`` on floats is compensated since Python
    3.12): the total in ascending key order, the VA volume in the order bins are added.
    """
    hist = dict(zip(keys, volumes))
    traded = sorted(k for k, v in hist.items() if v > 0)
    if not traded:
        return None
    lo, hi = traded[0], traded[-1]

    total = 0.0
    for k in range(lo, hi + step, step):
        total += hist.get(k, 0.0)

    top = max(hist[k] for k in traded)
    # Nearest the middle (lo + hi) / 2, compared doubled to stay in integers; then the lower key.
    poc = min((k for k in traded if hist[k] == top), key=lambda k: (abs(2 * k - lo - hi), k))

    val = vah = poc
    cumulative = hist[poc]
    target = va_fraction * total * (1.0 - REL_TOL)
    while (val, vah) != (lo, hi) and (va_fraction == 1.0 or cumulative < target):
        up = hist.get(vah + step, 0.0) if vah < hi else None
        down = hist.get(val - step, 0.0) if val > lo else None
        if down is None or (up is not None and up >= down):
            vah += step
            cumulative += up
        else:
            val -= step
            cumulative += down
    return poc, val, vah, cumulative, total


def random_histogram(rng: random.Random):
    """Keys on a random grid (possibly negative, with gaps), shuffled. Four volume styles: small
    integers (ties), 0/1/2 on a narrow grid (POC ties at equal distance from the middle), tenths
    (running sums that hit the target up to float rounding) and arbitrary floats."""
    step = rng.randint(1, 50)
    origin = rng.randint(-2000, 2000)
    style = rng.choice(["ints", "ties", "tenths", "floats"])
    width = 8 if style == "ties" else 60
    offsets = rng.sample(range(width), rng.randint(0, min(width, 40)))
    keys = [(origin + o) * step for o in offsets]
    draw = {
        "ints": lambda: float(rng.randint(0, 5)),
        "ties": lambda: float(rng.choice([0, 1, 2, 2])),
        "tenths": lambda: rng.randint(0, 9) / 10,
        "floats": lambda: rng.uniform(0.0, 1000.0) if rng.random() < 0.85 else 0.0,
    }[style]
    volumes = [draw() for _ in keys]
    va_fraction = rng.choice([0.7, 0.7, 0.9, 0.3, 0.5, 1.0, rng.uniform(1e-6, 1.0)])
    return keys, volumes, step, va_fraction


# ---- worked example and edge cases ---------------------------------------------------------


def test_spec_20_3_worked_example():
    poc, val, vah, va_volume, total = rust_indicators.value_area(SPEC_KEYS, SPEC_VOLUMES, 100, 0.70)
    assert (poc, val, vah) == (50_000, 49_900, 50_100)
    assert va_volume == 950.0
    assert total == 1250.0
    assert va_volume / total == 0.76


def test_spec_20_3_unsorted_input_and_int_volumes():
    order = [3, 0, 5, 2, 4, 1]
    keys = [SPEC_KEYS[i] for i in order]
    volumes = [int(SPEC_VOLUMES[i]) for i in order]
    assert rust_indicators.value_area(keys, volumes, 100, 0.70) == (50_000, 49_900, 50_100, 950.0, 1250.0)


def test_spec_20_3_whole_range_at_fraction_one():
    assert rust_indicators.value_area(SPEC_KEYS, SPEC_VOLUMES, 100, 1.0) == (50_000, 49_800, 50_300, 1250.0, 1250.0)


def test_empty_and_zero_volume_histograms_have_no_value_area():
    assert rust_indicators.value_area([], [], 100, 0.7) is None
    assert rust_indicators.value_area([0, 100, 200], [0.0, 0.0, 0.0], 100, 0.7) is None


def test_single_bin():
    assert rust_indicators.value_area([4200], [3.5], 10, 0.7) == (4200, 4200, 4200, 3.5, 3.5)


def test_poc_at_edge_expands_inward_and_gap_is_included():
    # POC at the upper edge: 10 + 3 = 13 < 14, + 3 = 16.
    assert rust_indicators.value_area([0, 1, 2, 3], [4.0, 3.0, 3.0, 10.0], 1, 0.7) == (3, 1, 3, 16.0, 20.0)
    # Zero-volume bin 20 lies inside the VA (total 28, target 19.6: 9 + 6 + 0 + 5 = 20).
    assert rust_indicators.value_area([-20, 0, 10, 30], [8.0, 9.0, 6.0, 5.0], 10, 0.7) == (0, 0, 30, 20.0, 28.0)


def test_ties():
    # POC tie: nearest the middle of the range, then the lower key.
    assert rust_indicators.value_area([0, 1, 2, 3, 4], [5.0, 1.0, 1.0, 5.0, 1.0], 1, 0.1)[0] == 3
    assert rust_indicators.value_area([0, 1, 2, 3], [1.0, 5.0, 5.0, 1.0], 1, 0.1)[0] == 1
    # Expansion tie takes the upper bin: 4 + 2 (upper) = 6 = 0.6 * 10.
    assert rust_indicators.value_area([0, 1, 2, 3, 4], [1.0, 2.0, 4.0, 2.0, 1.0], 1, 0.6) == (2, 2, 3, 6.0, 10.0)


def test_float_rounding_at_the_target_does_not_add_a_bin():
    # 0.6 + 0.3 == 0.8999999999999999 < 0.9 == 0.9 * 1.0; the tolerance stops there.
    assert 0.6 + 0.3 < 0.9 * (0.1 + 0.6 + 0.3)
    assert rust_indicators.value_area([0, 1, 2], [0.1, 0.6, 0.3], 1, 0.9) == (1, 1, 2, 0.6 + 0.3, 0.1 + 0.6 + 0.3)


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("va_fraction", [1.5, 0.0, -0.1, 1.0000001, math.nan, math.inf])
def test_bad_va_fraction_raises(va_fraction):
    with pytest.raises(ValueError, match=r"va_fraction must be in \(0, 1\]"):
        rust_indicators.value_area(SPEC_KEYS, SPEC_VOLUMES, 100, va_fraction)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="same length, got 6 keys and 5 volumes"):
        rust_indicators.value_area(SPEC_KEYS, SPEC_VOLUMES[:5], 100, 0.7)


@pytest.mark.parametrize(
    ("keys", "volumes", "step", "message"),
    [
        ([0, 150], [1.0, 2.0], 100, "bin key 150 is not a multiple of step 100"),
        ([0, 100, 0], [1.0, 2.0, 3.0], 100, "duplicate bin key 0"),
        ([0, 100], [1.0, -2.0], 100, "volume of bin 100 must be finite and >= 0"),
        ([0, 100], [math.nan, 2.0], 100, "volume of bin 0 must be finite and >= 0"),
        ([0, 100], [1.0, 2.0], 0, "step must be > 0"),
        ([0, 1 << 40], [1.0, 2.0], 1, "profile range spans"),
    ],
)
def test_invalid_input_raises(keys, volumes, step, message):
    with pytest.raises(ValueError, match=message):
        rust_indicators.value_area(keys, volumes, step, 0.7)


def test_module_metadata():
    assert isinstance(rust_indicators.__version__, str) and rust_indicators.__version__.count(".") == 2
    assert "POC" in rust_indicators.value_area.__doc__


# ---- against the pure-Python reference -----------------------------------------------------


def test_reference_reproduces_spec_example():
    # Guard that the reference itself implements the rules before using it as an oracle.
    assert reference_value_area(SPEC_KEYS, SPEC_VOLUMES, 100, 0.70) == (50_000, 49_900, 50_100, 950.0, 1250.0)
    assert reference_value_area([], [], 100, 0.7) is None


def test_matches_reference_on_random_histograms():
    rng = random.Random(20240521)
    checked = with_va = 0
    for _ in range(800):
        keys, volumes, step, va_fraction = random_histogram(rng)
        got = rust_indicators.value_area(keys, volumes, step, va_fraction)
        want = reference_value_area(keys, volumes, step, va_fraction)
        assert got == want, (keys, volumes, step, va_fraction)
        checked += 1
        if got is not None:
            with_va += 1
            poc, val, vah, va_volume, total = got
            assert val <= poc <= vah
            assert va_volume >= va_fraction * total * (1.0 - 1e-9)
    assert checked == 800
    assert with_va > 600  # the generator mostly produces histograms with volume
