"""operation-svc's API as the CLI calls it: the credential from IDP_TOKEN (a JWT) or
IDP_API_KEY, problem+json answers turned into errors a person can read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

# Exit codes scripts can rely on.
OK, FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3


class ApiError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _credentials(token: str | None, api_key: str | None) -> dict[str, str]:
    if token:
        return {"Authorization": f"Bearer {token}"}
    if api_key:
        return {"X-API-Key": api_key}
    raise ApiError("no credential: set IDP_TOKEN (or IDP_API_KEY), or pass --token", USAGE)


class Api:
    def __init__(self, url: str, token: str | None, api_key: str | None) -> None:
        headers = _credentials(token, api_key)
        try:
            self.client = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(30))
        except httpx.InvalidURL as exc:
            raise ApiError(f"IDP_URL {url!r} is not a URL: {exc}", USAGE) from None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self._refuse_another_origin(path)
        try:
            response = self.client.request(method, path, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ApiError(f"{self.client.base_url} cannot be reached: {exc}", UNREACHABLE) from exc
        if response.is_success:
            return response
        raise ApiError(
            problem_text(response), UNREACHABLE if response.status_code >= 500 else FAILED
        )

    def _refuse_another_origin(self, path: str) -> None:
        """The credential goes to IDP_URL alone: an answer's Location naming another
        origin is not followed."""
        target, base = httpx.URL(path), self.client.base_url
        if target.is_absolute_url and _origin(target) != _origin(base):
            raise ApiError(f"{base} pointed idp to another origin ({target}): not followed", FAILED)

    def get(self, path: str, **params: Any) -> Any:
        return answer_of(self.request("GET", path, params=params))

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.request("POST", path, json=body)

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paged listing."""
        cursor = None
        while True:
            page = self.get(path, **params, limit=200, **({"cursor": cursor} if cursor else {}))
            yield from page["items"]
            if not (cursor := page["next_cursor"]):
                return


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def answer_of(response: httpx.Response) -> Any:
    """The JSON of an answer; one that is none (an HTML page, nothing) is not the API's."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            f"{response.url} answered HTTP {response.status_code} without JSON: is IDP_URL "
            "operation-svc's address?",
            FAILED,
        ) from None


def problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except (ValueError, UnicodeDecodeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if not isinstance(problem, dict):
        return f"HTTP {response.status_code}: {response.text[:200]}"
    fields = "; ".join(
        f"{error.get('field')}: {error.get('message')}" for error in problem.get("errors") or []
    )
    return f"HTTP {response.status_code}: {problem.get('detail', '')}" + (
        f" ({fields})" if fields else ""
    )
