"""Queries of data sources, in the caller's tenant."""

from __future__ import annotations

from datasource_svc.models import DataSource
from idp_common.repository import TenantRepository


class DataSourceRepository(TenantRepository[DataSource]):
    model = DataSource
