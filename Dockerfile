# pouracquit service image: `docker build -t pouracquit .`
# A pinned base: rebuilding the same commit gives the same system libraries.
FROM python:3.11.11-slim-bookworm

# WeasyPrint renders with Pango; DejaVu is the default font of the receipts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core curl \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 pouracquit
WORKDIR /app

# Dependencies first, at the locked versions: this layer is rebuilt only when they change.
COPY pyproject.toml requirements.lock /app/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > runtime.txt \
 && pip install --no-cache-dir -r runtime.txt -c requirements.lock

# Then the source (.dockerignore keeps the venv, the data and local secrets out).
COPY . /app/src
RUN pip install --no-cache-dir --no-deps /app/src && rm -rf /app/src \
 && mkdir -p /var/lib/pouracquit && chown pouracquit /var/lib/pouracquit && chmod 0700 /var/lib/pouracquit

USER pouracquit
ENV POURACQUIT_CONFIG=/etc/pouracquit/pouracquit.toml
VOLUME ["/var/lib/pouracquit"]
EXPOSE 8787

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8787/healthz || exit 1

CMD ["pouracquit", "run"]
