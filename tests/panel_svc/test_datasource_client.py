"""panel-svc's calls to datasource-svc: it waits longer than any data source may take, and
says whether datasource-svc was slow or out of reach."""

from __future__ import annotations

import uuid

import httpx
import pytest

from idp_common.outbound import MAX_SOURCE_TIMEOUT_SECONDS
from panel_svc.datasources import DATASOURCE_TIMEOUT, DatasourceClient, DatasourceUnavailable


def test_panel_svc_waits_longer_than_any_data_source_may_take() -> None:
    assert DATASOURCE_TIMEOUT.read is not None
    assert DATASOURCE_TIMEOUT.read > MAX_SOURCE_TIMEOUT_SECONDS


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (httpx.ReadTimeout("slow"), "did not answer in time (ReadTimeout)"),
        (httpx.ConnectError("refused"), "could not be reached at http://datasources (Connect"),
    ],
)
async def test_a_slow_datasource_svc_is_not_called_out_of_reach(
    error: httpx.HTTPError, said: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    transport = httpx.MockTransport(fail)
    async with httpx.AsyncClient(base_url="http://datasources", transport=transport) as http:
        with pytest.raises(DatasourceUnavailable) as refused:
            await DatasourceClient(http).resolve(uuid.uuid4(), {}, {})
    assert said in refused.value.detail
    assert ("PANEL_DATASOURCE_API_URL" in refused.value.detail) == isinstance(
        error, httpx.ConnectError
    )
