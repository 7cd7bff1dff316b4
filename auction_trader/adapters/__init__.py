"""Venue adapters beyond what Nautilus ships."""
