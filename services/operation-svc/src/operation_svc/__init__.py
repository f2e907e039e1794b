"""operation_svc"""

import idp_common  # noqa: F401  (first: it keeps httpx's command-line client out of memory)
