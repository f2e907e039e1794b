# syntax=docker/dockerfile:1
#
# One Dockerfile, one target per deployable:
#
#   docker build --target panel-svc       -t idp-panel-svc:dev .
#   docker build --target operation-svc   -t idp-operation-svc:dev .
#   docker build --target datasource-svc  -t idp-datasource-svc:dev .
#   docker build --target executor-worker -t idp-executor-worker:dev .
#   docker build --target console         -t idp-console:dev .
#
# Each image holds only its own package (and idp-common) installed from uv.lock into
# /app/.venv, non-editable: the runtime stages contain no source tree, no uv and no
# build tools. The same image serves `<svc> serve` (CMD) and `<svc> migrate`, so
# Alembic migrations must ship inside the package (src/<pkg>/...).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_VERSION=0.13.8
ARG NODE_IMAGE=node:20-bookworm-slim

# --------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build-base
ARG UV_VERSION
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Workspace metadata only: the dependency layers below are rebuilt when the lock or a
# pyproject.toml changes, not on every source edit. uv needs every member's pyproject.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY services/panel-svc/pyproject.toml services/panel-svc/pyproject.toml
COPY services/operation-svc/pyproject.toml services/operation-svc/pyproject.toml
COPY services/datasource-svc/pyproject.toml services/datasource-svc/pyproject.toml
COPY services/executor-worker/pyproject.toml services/executor-worker/pyproject.toml
COPY services/console/pyproject.toml services/console/pyproject.toml

FROM build-base AS build-panel-svc
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package panel-svc
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package panel-svc

FROM build-base AS build-operation-svc
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package operation-svc
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package operation-svc

FROM build-base AS build-datasource-svc
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package datasource-svc
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package datasource-svc

FROM build-base AS build-executor-worker
# A C compiler for the sandbox launcher only; it stays in this stage.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package executor-worker
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package executor-worker
# Same flags as the Makefile; the worker finds it beside its Python.
RUN cc -O2 -Wall -Wextra -Werror -static -o /app/.venv/bin/idp-sandbox-exec \
    services/executor-worker/launcher/idp-sandbox-exec.c

FROM build-base AS build-console
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package console
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package console

# The web app, built as `make install` builds it (npm ci from the lock, tsc, vite build).
FROM ${NODE_IMAGE} AS build-console-web
WORKDIR /web
COPY services/console/web/package.json services/console/web/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --loglevel=error
COPY services/console/web/ ./
RUN npm run build

# ------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
# Fixed numeric ids so Kubernetes can verify runAsNonRoot (runAsUser: 10001).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && mkdir -p /app/data \
    && chown app:app /app/data
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001

FROM runtime AS panel-svc
# The virtualenv stays owned by root: the service cannot modify its own code.
COPY --from=build-panel-svc /app/.venv /app/.venv
ENV PANEL_HOST=0.0.0.0 \
    PANEL_PORT=8001 \
    OTEL_SERVICE_NAME=panel-svc
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/healthz', timeout=4)"]
CMD ["panel-svc", "serve"]

FROM runtime AS operation-svc
COPY --from=build-operation-svc /app/.venv /app/.venv
ENV OPERATION_HOST=0.0.0.0 \
    OPERATION_PORT=8002 \
    OTEL_SERVICE_NAME=operation-svc
EXPOSE 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8002/healthz', timeout=4)"]
CMD ["operation-svc", "serve"]

FROM runtime AS datasource-svc
COPY --from=build-datasource-svc /app/.venv /app/.venv
ENV DATASOURCE_HOST=0.0.0.0 \
    DATASOURCE_PORT=8003 \
    OTEL_SERVICE_NAME=datasource-svc
EXPOSE 8003
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8003/healthz', timeout=4)"]
CMD ["datasource-svc", "serve"]

FROM runtime AS executor-worker
COPY --from=build-executor-worker /app/.venv /app/.venv
# Root, so that each run gets a uid of its own: as 10001, every run would share the worker's
# uid, read the others' /proc (their parameters and secrets) and signal the worker. Compose
# and Kubernetes leave it only the capabilities that takes.
USER 0:0
ENV WORKER_HOST=0.0.0.0 \
    WORKER_PORT=8004 \
    OTEL_SERVICE_NAME=executor-worker
EXPOSE 8004
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8004/healthz', timeout=4)"]
CMD ["executor-worker", "serve"]

FROM runtime AS console
COPY --from=build-console /app/.venv /app/.venv
COPY --from=build-console-web /web/dist /app/console-web
ENV CONSOLE_HOST=0.0.0.0 \
    CONSOLE_PORT=8000 \
    CONSOLE_STATIC_DIR=/app/console-web
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["console", "serve"]
