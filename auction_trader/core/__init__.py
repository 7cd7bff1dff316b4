"""The framework-free AMT core: plain Python on plain numbers, no Nautilus imports.

One module per concept of the spec: ``initiative`` (order flow + quote imbalance confirmation),
``acceptance`` (k closes outside value), ``setups`` (break-in, failed breakout, breakout: triggers,
stops, targets), ``sizing`` (risk-based quantity, leverage cap, partial-exit split), ``exits``
(time stop, close back inside, the price a market exit gets), ``risk`` (cooldown, daily loss kill
switch), ``orders`` (which orders may rest, which must complete at once, what happens to a stuck
one) and ``signals`` (the state machine that combines them, one minute at a time). The Nautilus strategy adapts events to it
and turns its decisions into orders; a later port to another framework touches only that layer.
"""
