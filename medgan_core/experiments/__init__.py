"""Helpers specific to one experiment each (training loops, study loops, report tables)."""
