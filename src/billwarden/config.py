"""Settings: the one place billwarden reads its environment."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./billwarden.db"
# why a reconciliation record is out of sync (billwarden.reconciliation; docs/reconciliation.md)
RECONCILE_REASONS = (
    "status_mismatch",
    "price_mismatch",
    "period_mismatch",
    "cancel_state_mismatch",
    "customer_mismatch",
    "missing_in_stripe",
    "missing_locally",
    "snapshot_drift",
    "role_mismatch",
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class Settings(BaseSettings):
    """billwarden's configuration, read from `BILLWARDEN_*` environment variables."""

    # frozen: objects built from the settings (kit.state.from_settings) stay true to them
    model_config = SettingsConfigDict(
        env_prefix="BILLWARDEN_", env_file=None, extra="ignore", case_sensitive=False, frozen=True
    )

    environment: Environment = Environment.PRODUCTION
    database_url: str = DEFAULT_DATABASE_URL
    database_echo: bool = False
    database_pool_size: int = Field(default=10, ge=1)
    secret_key: SecretStr | None = None
    secret_key_fallbacks: list[SecretStr] = Field(default_factory=list)
    secret_key_file: Path = Path(".billwarden-secret")
    public_url: str = "http://127.0.0.1:8000"
    auto_migrate: bool = True
    log_level: str = "INFO"
    log_format: LogFormat | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    # answer hot reads (API keys, entitlements, webhook signing secrets) from memory, trusted
    # only while the database says nothing they hold has changed
    read_cache: bool = True
    # the largest request body read, on every route (sign-in and webhooks included)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # single-tenant mode: the unprefixed names one-app teams already use for Stripe
    single_tenant_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_SECRET_KEY")
    )
    single_tenant_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET")
    )
    single_tenant_allowed_price_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("STRIPE_ALLOWED_PRICE_IDS")
    )
    single_tenant_project_slug: str = "default"
    # a catalog file loaded into the single-tenant project at start-up
    catalog: Path | None = None

    # the webhook inbox and its worker
    embedded_worker: bool = True
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_batch_size: int = Field(default=20, ge=1, le=1000)
    worker_lease_seconds: int = Field(default=300, ge=1)
    # due work (inbox events, notifications, meter events) waiting longer than this: the workers
    # are stalled; /readyz reports it, and answers 503 for it only when asked to (embedded worker)
    worker_stall_seconds: int = Field(default=300, ge=1)
    worker_stall_not_ready: bool = False
    # notifications to the tenant app: sending and retrying (the workers above send them)
    notification_max_attempts: int = Field(default=8, ge=1, le=100)
    notification_retry_base_seconds: float = Field(default=5.0, gt=0)
    notification_retry_max_seconds: float = Field(default=3600.0, gt=0)
    notification_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # reconciliation with Stripe: scheduled runs (unset: on demand only), and the reasons a
    # scheduled run repairs by itself (comma-separated; see docs/reconciliation.md)
    reconcile_interval_seconds: int | None = Field(default=None, ge=60)
    reconcile_auto_repair: Annotated[list[str], NoDecode] = Field(default_factory=list)
    reconcile_lease_seconds: int = Field(default=600, ge=10)

    # identity: console sessions, developer tokens, login throttling, end-user secret rotation
    session_idle_timeout_seconds: int = Field(default=3600, ge=60)
    session_absolute_timeout_seconds: int = Field(default=43200, ge=60)
    developer_token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    login_throttle_window_seconds: int = Field(default=900, ge=1)
    login_throttle_max_failures_per_email: int = Field(default=5, ge=1)
    login_throttle_max_failures_per_address: int = Field(default=20, ge=1)
    end_user_secret_overlap_seconds: int = Field(default=86400, ge=0)
    # how long an invitation to a project can be accepted
    invitation_ttl_seconds: int = Field(default=7 * 86400, ge=60, le=90 * 86400)

    # the single-tenant project's end users: the tokens the team's app already issues (an HS256
    # shared secret, or RS256/ES256 tokens from its identity provider's JWKS), which claims name
    # the user, organization, email and roles, the cookie browsers carry them in, and the roles
    # that may use the seeds' admin routes (docs/auth.md)
    end_user_secret: SecretStr | None = None
    end_user_jwks_url: str | None = None
    end_user_issuer: str | None = None
    end_user_audience: str | None = None
    end_user_user_claim: str = "sub"
    end_user_organization_claim: str = "organization_id"
    end_user_email_claim: str = "email"
    end_user_roles_claim: str = "role"
    end_user_cookie: str | None = None
    end_user_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    end_user_admin_roles: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator(
        "single_tenant_webhook_secrets",
        "single_tenant_allowed_price_ids",
        "reconcile_auto_repair",
        "end_user_allowed_origins",
        "end_user_admin_roles",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("reconcile_auto_repair")
    @classmethod
    def _known_reasons(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(RECONCILE_REASONS))
        if unknown:
            raise ValueError(
                f"unknown reasons {', '.join(unknown)}; known: {', '.join(RECONCILE_REASONS)}"
            )
        if "missing_in_stripe" in value:
            # its repair removes mirror rows: a key switched to another Stripe account would
            # make a scheduled run remove them all, and every subject lose access
            raise ValueError("missing_in_stripe is repaired by hand only")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.TEXT if self.is_development else LogFormat.JSON


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
