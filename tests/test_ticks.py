"""The columnar tick batches and their encoding into Nautilus's Parquet schema."""

from __future__ import annotations

import numpy as np
import pytest
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import FIXED_PRECISION, Price, Quantity
from nautilus_trader.serialization.arrow.serializer import ArrowSerializer

from auction_trader.data.ticks import QuoteBatch, TradeBatch, decode_fixed, encode_fixed, quotes_table, trades_table
from auction_trader.instrument import BTCUSDT, InstrumentSpec

SPECS = [BTCUSDT, InstrumentSpec("XRPUSDT-LINEAR.BYBIT", "XRPUSDT", 4, 0), InstrumentSpec("ABC-LINEAR.BYBIT", "ABC", 8, 8)]


def _raw(units: int, precision: int) -> int:
    return units * 10 ** (FIXED_PRECISION - precision)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.instrument_id)
def test_trade_table_is_byte_identical_to_nautilus_serializer(spec):
    rng = np.random.default_rng(7)
    n = 500
    price = rng.integers(1, 10**12, n)
    size = rng.integers(1, 10**9, n)
    aggressor = rng.integers(0, 3, n).astype(np.uint8)
    ts = np.sort(rng.integers(0, 2**62, n))
    ids = np.array([f"id-{i}" for i in range(n)], dtype=object)
    mine = trades_table(TradeBatch(ts, price, size, aggressor, ids), spec)
    iid = InstrumentId.from_str(spec.instrument_id)
    objects = [
        TradeTick(
            iid,
            Price.from_raw(_raw(int(p), spec.price_precision), spec.price_precision),
            Quantity.from_raw(_raw(int(q), spec.size_precision), spec.size_precision),
            AggressorSide(int(a)),
            TradeId(t),
            int(x),
            int(x),
        )
        for p, q, a, t, x in zip(price, size, aggressor, ids, ts)
    ]
    reference = ArrowSerializer.serialize_batch(objects, TradeTick)
    assert mine.schema.equals(reference.schema, check_metadata=True)
    assert mine.equals(reference)


def test_quote_table_is_byte_identical_to_nautilus_serializer():
    rng = np.random.default_rng(8)
    n = 300
    bid = rng.integers(500_000, 700_000, n)
    ask = bid + rng.integers(1, 5, n)
    bs, as_ = rng.integers(1, 10**6, n), rng.integers(1, 10**6, n)
    ts = np.sort(rng.integers(0, 2**62, n))
    mine = quotes_table(QuoteBatch(ts, bid, ask, bs, as_), BTCUSDT)
    iid = InstrumentId.from_str(BTCUSDT.instrument_id)
    objects = [
        QuoteTick(iid, Price.from_raw(_raw(int(b), 1), 1), Price.from_raw(_raw(int(a), 1), 1), Quantity.from_raw(_raw(int(x), 3), 3), Quantity.from_raw(_raw(int(y), 3), 3), int(t), int(t))
        for b, a, x, y, t in zip(bid, ask, bs, as_, ts)
    ]
    assert mine.equals(ArrowSerializer.serialize_batch(objects, QuoteTick))


def test_encode_handles_sign_and_extremes_exactly():
    values = np.array([-(2**62), -123_456_789, -1, 0, 1, 639_601, 2**53 - 1, 2**62], dtype=np.int64)
    encoded = encode_fixed(values, 1)
    as_ints = [int.from_bytes(v.as_py(), "little", signed=True) for v in encoded]
    assert as_ints == [int(v) * 10 ** (FIXED_PRECISION - 1) for v in values]
    small = values[np.abs(values) < 2**53]
    assert decode_fixed(encode_fixed(small, 1), 1).tolist() == small.tolist()


def test_drop_repeats_keeps_changes_only():
    batch = QuoteBatch(
        np.array([1, 2, 3, 4, 5]),
        np.array([10, 10, 10, 11, 11]),
        np.array([11, 11, 11, 12, 12]),
        np.array([5, 5, 6, 6, 6]),
        np.array([7, 7, 7, 7, 7]),
    )
    kept, dropped = batch.drop_repeats()
    assert dropped == 2
    assert kept.ts_event.tolist() == [1, 3, 4]
