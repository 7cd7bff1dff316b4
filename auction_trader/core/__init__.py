"""The framework-free AMT core: plain Python on plain numbers, no Nautilus imports.

One module per concept of the spec: ``initiative`` (order flow + quote imbalance confirmation),
``acceptance`` (k closes outside value), ``setups`` (break-in, failed breakout, breakout: triggers,
stops, targets), ``sizing`` (risk-based quantity, leverage cap, partial-exit split), ``exits``
(time stop, close back inside, the price a market exit gets), ``risk`` (cooldown, daily loss kill
switch), ``orders`` (which orders may rest, which must complete at once, what happens to a stuck
one), ``signals`` (the state machine that combines them, one minute at a time), ``trade`` (the
plan of one open trade), ``lifecycle`` (the trade lifecycle: decisions and venue events in, the
orders the plan wants out, behind a small venue port) and ``position`` (the net position from
fills). Every piece of decision state has ``state()`` / ``from_state()`` (JSON-safe primitives).
The Nautilus strategy adapts events to it and turns the orders it wants into Nautilus orders; a
later port to another framework touches only that layer.
"""
