"""Emulation (placeholder)."""
