from idp_common.migrations import run_env
from panel_svc.models import Base

run_env(Base.metadata)
