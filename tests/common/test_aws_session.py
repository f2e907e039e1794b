"""The SQS clients' session, its endpoint data cut to SQS and STS: botocore's own data, and
every client made from it resolves the endpoint a session with all of botocore's would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiobotocore.session import AioSession
from botocore.config import Config

from idp_common.messaging.aws_session import ENDPOINTS, SERVICES, aws_session
from scripts.cut_aws_endpoints import cut_endpoints

ALL_REGIONS = sorted(
    {region for partition in cut_endpoints()["partitions"] for region in partition["regions"]}
)
VARIANTS = {
    "default": Config(),
    "fips": Config(use_fips_endpoint=True),
    "dualstack": Config(use_dualstack_endpoint=True),
}


def test_the_endpoint_data_is_botocores_own_cut_to_the_services_used() -> None:
    assert json.loads(ENDPOINTS.read_text()) == cut_endpoints(), (
        "botocore's endpoint data has moved on: run `python -m scripts.cut_aws_endpoints`"
    )


async def resolved(session: AioSession, service: str, region: str, config: Config) -> Any:
    """What a client's requests go to and are signed for (or the error making it raises)."""
    try:
        async with session.create_client(
            service,
            region_name=region,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=config,
        ) as client:
            signer = client._request_signer
            return (
                client.meta.endpoint_url,
                client.meta.partition,
                signer.signing_name,
                signer.region_name,
                signer.signature_version,
            )
    except Exception as error:  # a region no partition knows, in both, the same way
        return repr(error)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("service", SERVICES)
async def test_every_region_resolves_as_with_all_of_botocores_data(
    service: str, variant: str
) -> None:
    full, cut = AioSession(), aws_session()
    for region in [*ALL_REGIONS, "fips-us-east-1", "us-gov-west-1-fips", "xx-nowhere-1"]:
        expected = await resolved(full, service, region, VARIANTS[variant])
        assert await resolved(cut, service, region, VARIANTS[variant]) == expected, region
