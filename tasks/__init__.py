"""Prefect tasks: thin wrappers that call repometer's plain functions by identifier."""
