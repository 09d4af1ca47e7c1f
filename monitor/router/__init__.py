"""The alert router: scaling-halt signals → notifications for every receiver.

Stages, one file each, composed by ``monitor.router.pipeline``:
decide → group → inhibit → silence → dedup → rate-limit → route → deliver.
"""
