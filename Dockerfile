# syntax=docker/dockerfile:1
# databar-mcp: the MCP server for Databar.ai.
#
#   docker build -t databar-mcp .      (needs BuildKit, the default builder since Docker 23: RUN --mount)
#   stdio (what an MCP client launches):
#     docker run -i --rm -e DATABAR_API_KEY -v databar-mcp:/data databar-mcp
#   streamable HTTP on all interfaces (a bearer token is then required; the server refuses to start without):
#     docker run -d -p 8000:8000 -e DATABAR_API_KEY -e DATABAR_MCP_HTTP_TOKEN -v databar-mcp:/data \
#       databar-mcp --transport http --host 0.0.0.0
#   Secrets come from the environment at run time (or DATABAR_API_KEY_FILE / DATABAR_MCP_HTTP_TOKEN_FILE
#   pointing at a mounted secret), never from the image. tests/test_http.py checks this file and runs its
#   install steps: the wheel built by `pip wheel` below is the one `pip install` puts in the runtime image.

# The base image is pinned by tag and digest (the multi-platform index of python:3.11.16-slim-bookworm as
# docker-library/repo-info recorded it, commit 422f3cfe): a rebuild gets the same bytes. To move to a newer
# patch, take the tag's index digest from repos/python/remote/<tag>.md there (or `docker buildx imagetools
# inspect python:<tag>`) and change both FROM lines.

# ---- build: a wheel from the source (only the files the wheel needs are copied) ----
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY databar_mcp ./databar_mcp
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---- runtime: the wheel installed into a slim Python, run as an unprivileged user ----
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABAR_MCP_STATE_DIR=/data
RUN groupadd --system --gid 10001 databar \
    && useradd --system --uid 10001 --gid databar --home-dir /home/databar --create-home --shell /usr/sbin/nologin databar \
    && mkdir -p /data \
    && chown databar:databar /data
# The wheel is bind-mounted from the build stage, so it never becomes a layer of this image.
# Dependencies at the versions of constraints.txt (the same pins make uses), for reproducible images.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir -c /tmp/constraints.txt /dist/*.whl
USER 10001:10001
WORKDIR /home/databar
VOLUME ["/data"]
EXPOSE 8000
# HTTP mode: GET /healthz on the port the server was started with (read from its own command line).
# stdio mode: there is no endpoint; the check reads the server's ledger (an integrity check, read-only).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["databar-mcp", "healthcheck"]
ENTRYPOINT ["databar-mcp"]
CMD []
