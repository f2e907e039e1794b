"""Writes ``idp_common/messaging/aws_endpoints.json``: botocore's endpoint data (the version
uv.lock pins) cut to the services the platform's AWS clients use. Run it when botocore is
upgraded and ``tests/common/test_aws_session.py`` says the data has moved on."""

from __future__ import annotations

import json
from typing import Any

from botocore.loaders import create_loader

from idp_common.messaging.aws_session import ENDPOINTS, SERVICES


def cut_endpoints() -> dict[str, Any]:
    """botocore's own ``endpoints.json``, each partition's services but ``SERVICES`` left out."""
    endpoints: dict[str, Any] = create_loader().load_data("endpoints")
    for partition in endpoints["partitions"]:
        partition["services"] = {
            name: service for name, service in partition["services"].items() if name in SERVICES
        }
    return endpoints


def main() -> None:
    ENDPOINTS.write_text(json.dumps(cut_endpoints(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
