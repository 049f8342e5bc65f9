"""Rendering: the only place that scales or formats numbers (tables, CSV, JSON)."""
