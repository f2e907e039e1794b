from idp_common.migrations import run_env
from operation_svc.models import Base

run_env(Base.metadata)
