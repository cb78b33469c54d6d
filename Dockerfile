# syntax=docker/dockerfile:1
# The backup runner: `python -m drkit backup STORE`, as the backup CronJobs run it
# (components/backup_cronjobs.py). Build and push to this region's ECR repository:
#   docker build -t 123456789012.dkr.ecr.us-east-1.amazonaws.com/aipx/backup-runner:0.1.0 .
# Two stages: `build` resolves the locked environment with uv; `runtime` gets only that
# environment, Debian's database clients and a numeric non-root user. The pod runs it with a
# read-only root filesystem and an emptyDir on /tmp, so nothing here needs to write elsewhere.

# Pinned to the patch release; pin the digest too (python:3.11.14-slim-bookworm@sha256:...) where
# the build can resolve it.
FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/drkit/bin:$PATH

FROM base AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/drkit
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
# The runner never imports the Pulumi SDKs (tests/unit/test_dockerfile.py checks): leaving them
# out keeps a few hundred MB of provider SDKs out of every backup pod.
ARG NOT_IN_RUNNER="--no-install-package pulumi --no-install-package pulumi-aws \
--no-install-package pulumi-gcp --no-install-package pulumi-kubernetes \
--no-install-package pulumi-policy"
# Dependencies first: this layer changes only when uv.lock does.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project ${NOT_IN_RUNNER}
COPY README.md ./
COPY stackmodels ./stackmodels
COPY drkit ./drkit
RUN uv sync --frozen --no-dev --no-editable ${NOT_IN_RUNNER}

FROM base AS runtime
# pg_dump must be at least the server's major version: 15 is Debian bookworm's and the local
# harness's; a newer server needs a newer base (trixie ships 17). Debian's security updates
# supersede exact versions, so the major version in the package name is the pin.
ARG PG_MAJOR=15
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        "postgresql-client-${PG_MAJOR}" \
        redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 drkit \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin drkit
COPY --from=build /opt/drkit /opt/drkit
LABEL org.opencontainers.image.title="backup-runner" \
      org.opencontainers.image.description="drkit backup engine: python -m drkit backup STORE"
ENV HOME=/tmp
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["python", "-m", "drkit"]
CMD ["--help"]
