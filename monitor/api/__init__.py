"""driftgate's HTTP API: rollout gates (Argo Rollouts, Flagger), Prometheus metrics, signal
lifecycle (ack, resume), silences, history and status. See docs/api.md.

One concern per module: ``app`` (the factory and error handling), ``context`` (what every
request reads: settings and store), ``auth`` (bearer token of mutating endpoints), ``gate``
(Argo web metric and Flagger webhooks), ``metrics``, ``signals``, ``silences``, ``history``
(history and status) and ``models`` (request bodies). The rules themselves live in
:mod:`monitor.operations`, shared with the command line.
"""

from monitor.api.app import create_app

__all__ = ["create_app"]
