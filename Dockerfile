# The gateway in a container: `docker compose up` (compose.yaml) runs it beside PostgreSQL 16.
# It needs GATEWAY_DATABASE_URL (a user that may create roles: migrations create the pools' roles)
# and GATEWAY_SECRET (32 characters or more); it serves on 0.0.0.0:8000, as a user without privileges.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/gateway gateway
COPY policies /app/policies
WORKDIR /app
USER gateway

# The data dir holds the embedded Postgres only when no GATEWAY_DATABASE_URL is given.
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_POLICY_DIR=/app/policies \
    GATEWAY_DATA_DIR=/var/lib/gateway \
    GATEWAY_LOG_FORMAT=json
EXPOSE 8000
# Starting migrates the store and starts the policy workers: give it a minute before counting failures.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['GATEWAY_PORT'], timeout=4)"]
CMD ["gateway", "serve"]
