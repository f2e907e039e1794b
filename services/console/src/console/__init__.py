"""The web console's server: static files of the single-page app and the API proxy."""

import idp_common  # noqa: F401  (first: it keeps httpx's command-line client out of memory)
