"""Turning executed notebooks into reports a student can read anywhere (offline)."""
