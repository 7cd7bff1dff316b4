"""What Nautilus's Bybit clients lack for this plugin (DESIGN.md, "Live path"): a public websocket
URL of its own, L1 from orderbook.1, a funding ledger, recording into our catalog."""
