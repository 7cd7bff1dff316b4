"""The live node's parts that the backtest does not have: store, alerts, control, reconciliation."""
