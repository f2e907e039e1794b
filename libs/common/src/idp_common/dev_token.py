"""``idp-dev-token``: mint a token for local development.

It signs only with the built-in development secret, which no service accepts outside
development (they require AUTH_JWT_SECRET there), so it cannot mint a token for a real
deployment; it refuses to run when AUTH_JWT_SECRET is set, to make that plain.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import cast

from idp_common.auth import HUMAN_ROLES, PLATFORM_OPERATOR, Role, mint_token
from idp_common.settings import AuthSettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idp-dev-token", description=__doc__)
    parser.add_argument("--tenant", default="demo")
    parser.add_argument("--subject", default="dev-user")
    mintable = (*HUMAN_ROLES, PLATFORM_OPERATOR)
    parser.add_argument("--roles", default="admin", help=f"comma-separated: {','.join(mintable)}")
    parser.add_argument("--groups", default="", help="comma-separated group names")
    parser.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    if os.environ.get("AUTH_JWT_SECRET"):
        parser.error("AUTH_JWT_SECRET is set: development tokens are for development only")
    roles = [role for role in args.roles.split(",") if role]
    if not roles or not set(roles) <= set(mintable):
        parser.error(f"--roles must be a subset of {', '.join(mintable)}")
    token = mint_token(
        AuthSettings(jwt_secret=None),
        subject=args.subject,
        tenant=args.tenant,
        roles=cast(list[Role], roles),
        groups=[group for group in args.groups.split(",") if group],
        ttl_seconds=args.ttl,
    )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
