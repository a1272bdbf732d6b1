# syntax=docker/dockerfile:1
# Build stage: build the wheel (it carries mappings/ and config/demo.yaml as package data).
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY adapters ./adapters
COPY mappings ./mappings
COPY config ./config
RUN python -m build --wheel --outdir /dist

# Runtime stage: only the installed wheel, a non-root user and the state volume.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EVBRIDGE_STATE_DIR=/var/lib/evbridge
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl \
    && rm -f /tmp/*.whl \
    && groupadd --system --gid 10001 evbridge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/evbridge --create-home evbridge \
    && mkdir -p /config
USER 10001:10001
WORKDIR /var/lib/evbridge
VOLUME ["/var/lib/evbridge"]
# SHIP (one port per exposed device from 4712), OCPP CSMS
EXPOSE 4712-4760 9000
# No HEALTHCHECK: `evbridge --version` would pass whatever the bridge does; add one on the
# status API (api.enabled) once it offers a health endpoint.
CMD ["evbridge", "run"]
