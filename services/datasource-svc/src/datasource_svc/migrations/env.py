from datasource_svc.models import Base
from idp_common.migrations import run_env

run_env(Base.metadata)
