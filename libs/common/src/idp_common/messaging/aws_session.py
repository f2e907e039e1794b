"""The botocore session the SQS clients are made from, its endpoint data cut to the services
they use.

Making its first client, botocore parses ``endpoints.json`` (1.2 MB: every AWS service in
every partition) and keeps all of it: 6.8 MB of each process's idle memory (measured), to
look up one service. ``aws_endpoints.json`` is that file with SQS and STS alone (the
credential chain assumes roles through STS, as on EKS), every partition, region and variant
kept, so a client resolves the endpoint botocore would: ``tests/common/test_aws_session.py``
compares them region by region, and fails when botocore's data has moved on
(``scripts/cut_aws_endpoints.py`` writes the file again)."""

from __future__ import annotations

import json
from pathlib import Path

from aiobotocore.session import AioSession
from botocore.regions import EndpointResolver

ENDPOINTS = Path(__file__).with_name("aws_endpoints.json")
SERVICES = ("sqs", "sts")


def aws_session() -> AioSession:
    session = AioSession()
    # botocore has no public way to give a session its endpoint data but a search path,
    # and data found there is treated as not botocore's own (it then overrides the
    # endpoint rules); this data is botocore's own, cut.
    session._register_internal_component(
        "endpoint_resolver",
        EndpointResolver(json.loads(ENDPOINTS.read_bytes()), uses_builtin_data=True),
    )
    return session
