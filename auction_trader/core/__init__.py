"""The framework-free AMT core: signal state machine, sizing and exit plans on plain numbers.

Nothing here imports Nautilus, so the rules can be tested without an engine and ported unchanged
when the framework layer changes (DESIGN.md, "Thin framework layer"). Filled by the strategy work.
"""
