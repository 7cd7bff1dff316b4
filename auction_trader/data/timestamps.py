"""Timestamps: exact conversion to nanoseconds, and the units a wrong value looks like.

A column of timestamps is read as unix seconds, milliseconds, microseconds or nanoseconds, or as
ISO 8601 text. For generic CSVs the unit is inferred from the values (specv2 §3.2's
"converters"): the unit under which every sampled value is a date between 1990 and 2100. When no
single unit fits (values outside that span, mixed magnitudes, ISO text without a timezone) the best
guess is used and a warning says what was assumed - the spec's "best effort, warn if ambiguous".

Every format's timestamps are then held to the instrument's plausible window
(:mod:`auction_trader.data.validate`); when a value falls outside it - a feed in seconds read as
milliseconds lands in 1970 - the message says which unit the value looks like
(:func:`looks_like`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

import pandas as pd

from auction_trader.data.errors import BadRow

NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DIGITS = {u: len(str(k)) - 1 for u, k in NS_PER.items()}
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds", "iso": "ISO 8601 text"}
_LO_S, _HI_S = 631_152_000, 4_102_444_800  # 1990-01-01, 2100-01-01 in unix seconds
UNITS = ("auto", "s", "ms", "us", "ns", "iso")
MAX_NS = 2**63 - 1


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def detect_unit(samples: list[str]) -> tuple[str, str | None]:
    """(unit, warning or None) for a sample of timestamp strings."""
    samples = [s.strip() for s in samples if s and s.strip()]
    if not samples:
        return "ms", "no timestamps to inspect; assuming milliseconds"
    numbers = [_as_number(s) for s in samples]
    if any(v is None for v in numbers):
        naive = [s for s in samples if _as_number(s) is None and not _has_zone(s)]
        return "iso", (f"ISO timestamps without a timezone (e.g. {naive[0]!r}); assuming UTC" if naive else None)
    fits = [u for u, k in NS_PER.items() if all(_LO_S <= v * k / 1e9 <= _HI_S for v in numbers)]
    if len(fits) == 1:
        return fits[0], None
    # Nothing fits everywhere: take the unit that puts the median closest to the plausible span.
    median = sorted(numbers)[len(numbers) // 2]

    def distance(unit: str) -> float:
        seconds = abs(median) * NS_PER[unit] / 1e9
        if seconds <= 0:
            return math.inf
        return 0.0 if _LO_S <= seconds <= _HI_S else min(abs(math.log10(seconds / _LO_S)), abs(math.log10(seconds / _HI_S)))

    best = min(NS_PER, key=distance)
    return best, (
        f"timestamp unit is ambiguous (values from {min(numbers):g} to {max(numbers):g} fit no single "
        f"unit as dates in 1990-2100); assuming {best}. Pass --ts-unit to be explicit."
    )


def _has_zone(text: str) -> bool:
    t = text.strip()
    return t.endswith(("Z", "z")) or (len(t) > 19 and ("+" in t[10:] or "-" in t[19:]))


def looks_like(value: float, unit: str) -> str:
    """'; the values look like seconds' when another unit would make ``value`` a 1990-2100 date."""
    if unit not in NS_PER:
        return ""
    fits = [u for u, k in NS_PER.items() if u != unit and _LO_S <= float(value) * k / 1e9 <= _HI_S]
    return f"; the values look like {UNIT_NAMES[fits[0]]}" if fits else ""


def stamp(value: object, unit: str, name: str) -> int:
    """An integer timestamp in ``unit`` (a JSON number) as nanoseconds.

    Strict about type: ``true``, ``1.7e12`` and ``"1700000000000"`` are refused, not coerced. A
    value too large for nanoseconds since 1970 in an int64 (after 2262) is refused naming the unit
    it looks like, instead of overflowing later.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRow(name, f"not an integer timestamp in {UNIT_NAMES[unit]}: {_shown(value)}")
    if value <= 0:
        raise BadRow(name, f"not a positive timestamp in {UNIT_NAMES[unit]}: {value}")
    ns = value * NS_PER[unit]
    if ns > MAX_NS:
        raise BadRow(name, f"{value} as {UNIT_NAMES[unit]} is after the year 2262, beyond nanosecond timestamps{looks_like(value, unit)}")
    return ns


def _shown(value: object) -> str:
    """A JSON value as it appeared in the file, for messages."""
    import json

    try:
        return json.dumps(value)[:60]
    except (TypeError, ValueError):
        return repr(value)[:60]


def to_ns(text: str, unit: str, name: str = "ts") -> int:
    """One timestamp in ``unit`` to integer nanoseconds, exactly for decimal text."""
    text = text.strip()
    if unit == "iso":
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise BadRow(name, f"not an ISO 8601 timestamp: {text!r}") from None
        if stamp is pd.NaT:
            raise BadRow(name, f"not an ISO 8601 timestamp: {text!r}")
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return int(stamp.value)
    scale = NS_PER[unit]
    digits = _DIGITS[unit]  # decimals that still fit in nanoseconds
    whole, dot, frac = text.partition(".")
    if text.isascii() and whole.isdigit() and (not dot or frac.isdigit()) and len(frac) <= digits:
        ns = int(whole) * scale + (int(frac) * 10 ** (digits - len(frac)) if frac else 0)
    else:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise BadRow(name, f"not a timestamp in {unit}: {text!r}") from None
        if not value.is_finite() or value <= 0:
            raise BadRow(name, f"not a positive timestamp in {unit}: {text!r}")
        ns = int(value * scale)
    if ns <= 0:
        raise BadRow(name, f"not a positive timestamp in {UNIT_NAMES[unit]}: {text!r}")
    if ns > MAX_NS:
        raise BadRow(name, f"{text} as {UNIT_NAMES[unit]} is after the year 2262, beyond nanosecond timestamps{looks_like(float(Decimal(text)), unit)}")
    return ns


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str | None, name: str) -> int | None:
    """A command line's ISO 8601 time (UTC unless it says otherwise) to ns; None stays None.
    ValueError naming the option and showing the expected form otherwise."""
    if text is None:
        return None
    message = f"{name} {text!r}: not an ISO 8601 timestamp (e.g. 2024-01-01T08:00 or 2024-01-01T08:00:00Z)"
    if not _ISO.match(text.strip()):
        raise ValueError(message)
    try:
        return to_ns(text, "iso", name)
    except BadRow:
        raise ValueError(message) from None
