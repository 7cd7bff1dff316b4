"""Nautilus indicators wrapping the Rust feature engine (rolling value area, order flow, qimb)."""
