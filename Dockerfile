# Partnerbot: slim Python image, non-root user, health check on /healthz.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000

WORKDIR /app

RUN groupadd --system partnerbot && useradd --system --gid partnerbot --home /app partnerbot

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY config ./config
COPY models ./models
COPY services ./services
COPY blocks ./blocks
COPY handlers ./handlers
COPY jobs ./jobs
COPY adapters ./adapters
COPY migrations ./migrations
COPY bot.py alembic.ini manifest.yml ./
RUN pip install . && mkdir -p /app/data && chown partnerbot:partnerbot /app/data

USER partnerbot
VOLUME ["/app/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"3000\")}/healthz', timeout=4)" || exit 1

# Applies pending migrations (under a lock), then serves Socket Mode or HTTP depending on SLACK_APP_TOKEN.
CMD ["python", "bot.py"]
