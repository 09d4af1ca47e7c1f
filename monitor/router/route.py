"""Route: the routing tree picks the receivers of an alert (Alertmanager semantics).

An alert enters at the root and descends into the first child whose matchers match (and
into later matching siblings too when that child says ``continue``); where no child matches,
the node itself takes it. Children inherit ``receiver``, ``group_by``, ``group_wait_s``,
``repeat_interval_s`` and ``auto_resolve`` from their parent unless they set them.

>>> from monitor.config import RouteSettings
>>> tree = Route.from_settings(RouteSettings.model_validate({
...     "receiver": "slack", "group_by": ["segment"],
...     "routes": [{"matchers": ["severity=critical"], "receiver": "pager", "continue": True},
...                {"matchers": ["region=eu-west"], "receiver": "eu-oncall"}]}))
>>> [r.receiver for r in tree.match({"severity": "critical", "region": "eu-west"})]
['pager', 'eu-oncall']
>>> [r.receiver for r in tree.match({"severity": "warning", "region": "us-east"})]
['slack']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.config import RouteSettings
from monitor.router.matchers import Matcher, matches, parse_matchers

__all__ = ["Route"]


@dataclass(frozen=True, slots=True)
class Route:
    receiver: str | None
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait_s: float
    repeat_interval_s: float
    continue_: bool
    auto_resolve: bool
    path: str
    routes: tuple[Route, ...] = field(default=())

    @classmethod
    def from_settings(
        cls, s: RouteSettings, parent: Route | None = None, path: str = "route"
    ) -> Route:
        node = cls(
            receiver=s.receiver
            if s.receiver is not None
            else (parent.receiver if parent else None),
            matchers=tuple(parse_matchers(s.matchers)),
            group_by=tuple(s.group_by)
            if s.group_by is not None
            else (parent.group_by if parent else ("segment",)),
            group_wait_s=s.group_wait_s
            if s.group_wait_s is not None
            else (parent.group_wait_s if parent else 0.0),
            repeat_interval_s=(
                s.repeat_interval_s
                if s.repeat_interval_s is not None
                else (parent.repeat_interval_s if parent else 14_400.0)
            ),
            continue_=s.continue_,
            auto_resolve=s.auto_resolve
            if s.auto_resolve is not None
            else (parent.auto_resolve if parent else False),
            path=path,
        )
        children = tuple(
            cls.from_settings(c, node, f"{path}.routes[{i}]") for i, c in enumerate(s.routes)
        )
        return cls(
            **{**{f: getattr(node, f) for f in node.__dataclass_fields__}, "routes": children}
        )

    def match(self, labels: dict[str, str]) -> list[Route]:
        """The routes (tree nodes) that take an alert with these labels, in order."""
        out: list[Route] = []
        for child in self.routes:
            if matches(child.matchers, labels):
                out.extend(child.match(labels))
                if not child.continue_:
                    break
        if not out and self.receiver is not None:
            out.append(self)
        return out
