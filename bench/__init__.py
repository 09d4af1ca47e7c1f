"""Benchmarks of driftgate (run as modules: ``python -m bench.detection``)."""
