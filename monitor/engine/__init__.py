"""The engine's stages, one per module (see docs/architecture.md).

* :mod:`monitor.engine.windows` — event-time windows of the roll-ups, closed by watermark;
* :mod:`monitor.engine.rollup` — the roll-ups' window detectors.
"""
