"""Settings from the environment (prefix ``COMMONS_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-this-is-not-a-secret"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything configurable about one commons-map deployment."""

    model_config = SettingsConfigDict(
        env_prefix="COMMONS_",
        env_file=(str(PROJECT_ROOT / ".env"), ".env"),
        extra="ignore",
    )

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/commons_map"
    # A streaming replica (hot standby) for the public reads: OGC API, tiles, the public map, open
    # data (commons_map.replica). None: everything reads the primary.
    database_replica_url: str | None = None
    # Public reads go back to the primary while the replica is further behind than this.
    replica_max_lag_seconds: float = Field(default=30.0, ge=0)
    # How often the replica's health and lag are checked (at most once per period, in a request).
    replica_check_seconds: float = Field(default=2.0, gt=0)
    # The app (API, pages, OGC, tiles, OpenRosa) logs in as this role, which owns nothing and is held by
    # row-level security (commons_map.tenancy); migrations and the CLI use ``database_url`` (the owner).
    # None: ``database_url`` with its user replaced by ``app_role`` (and no password).
    database_app_url: str | None = None
    app_role: str = Field(default="commons_app", pattern="^[a-z_][a-z0-9_]{0,62}$")
    environment: str = Field(default="development", pattern="^(development|test|production)$")
    secret_key: str = DEFAULT_SECRET
    token_minutes: int = 60 * 24 * 7
    default_timezone: str = "Europe/Paris"
    # How far outside its territory a commons may lie before we suspect swapped coordinates.
    territory_margin_m: float = 20_000.0
    # Soil organic matter to carbon conversion (Pribyl 2010: 2.0 theoretical), an estimate.
    som_to_soc_factor: float = 2.0
    data_licence: str = "ODbL-1.0"
    # The largest request body read before parsing, on every route but the file uploads (which have
    # their own bounds, ingest.safety.LIMITS): a larger one is refused with 413 before it is parsed.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # The reverse proxies whose X-Forwarded-For names the client (comma-separated addresses); none: the
    # client is the peer of the connection, whatever headers it sends.
    trusted_proxies: str = ""
    attachments_dir: Path = PROJECT_ROOT / "var" / "attachments"
    # E-mail (notifications): no host, no e-mail; the inbox works regardless.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "commons-map <noreply@localhost>"
    smtp_timeout: float = 30.0
    # Partner maps (commons_map.partners): a partner's copy is read again when older than this many
    # seconds, by the app itself (0: not by the app; run `commons-map partners refresh --loop`).
    partners_refresh_seconds: float = Field(default=900.0, ge=0)
    partners_timeout_seconds: float = Field(default=10.0, gt=0)  # one answer of a partner
    partners_max_bytes: int = Field(default=8 * 2**20, ge=1024)  # one answer of a partner
    partners_max_features: int = Field(default=5000, ge=1)  # per partner layer
    # Where members reach the pages: links in e-mails are made absolute with it.
    public_url: str = "http://localhost:8000"

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET:
            raise ValueError(
                "COMMONS_SECRET_KEY must be set to a long random value in production"
            )
        return self

    @property
    def sync_url(self) -> str:
        """The database URL (the owner's) with the psycopg 3 driver named, whatever the user wrote."""
        return psycopg_url(self.database_url)

    @property
    def replica_sync_url(self) -> str | None:
        """The replica's URL with the psycopg 3 driver named, or None."""
        return psycopg_url(self.database_replica_url) if self.database_replica_url else None

    @property
    def app_url(self) -> str:
        """The URL the app logs in with: ``database_app_url``, else the owner's URL as ``app_role``."""
        if self.database_app_url:
            return psycopg_url(self.database_app_url)
        from sqlalchemy.engine import make_url

        url = make_url(self.sync_url).set(username=self.app_role, password=None)
        return url.render_as_string(hide_password=False)


def psycopg_url(url: str) -> str:
    """``url`` with the psycopg 3 driver named, whatever the user wrote."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
