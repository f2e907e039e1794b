"""The count of messages sent again because nothing acted on the first: by the reconcilers
(a job, a submission, a webhook) and by the worker (a run's finish). Its own module: the
worker loads no database stack."""

from __future__ import annotations

from prometheus_client import Counter

RESENT = Counter(
    "idp_reconciler_resent_total", "Messages sent again because none was acted on.", ["kind"]
)
