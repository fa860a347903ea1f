"""Readers of the input formats (data_interfaces.md §3, §4, §6)."""
