# The commons-map app. Deployed beside the postgis/postgis image (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client curl \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 commons
WORKDIR /app
COPY pyproject.toml README.md ./
COPY commons_map ./commons_map
COPY api ./api
COPY ingest ./ingest
COPY maps ./maps
RUN pip install .
RUN mkdir -p /data/attachments && chown commons /data/attachments
USER commons
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8000/health || exit 1
# Migrate, then serve. The demo cooperative is loaded only when COMMONS_LOAD_DEMO=1.
CMD ["sh", "-c", "commons-map db upgrade && if [ \"$COMMONS_LOAD_DEMO\" = 1 ]; then commons-map demo load; fi && exec commons-map serve --host 0.0.0.0 --port 8000 --workers ${WORKERS:-2}"]
