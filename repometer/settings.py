"""Runtime settings: every field can be set as a ``REPOMETER_<FIELD>`` environment variable."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import limits
import platformdirs
from pydantic import ByteSize, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from repometer.errors import InvalidSettingError

#: URL schemes a repository may be mirrored over.
Scheme = Literal["https", "ssh", "git"]


#: Defaults of the limits that plain functions also take as arguments.
DEFAULT_MAX_BLOB_SIZE = ByteSize(10 * 1024**2)
DEFAULT_RENAME_LIMIT = 1000


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("repometer", appauthor=False))


class Settings(BaseSettings):
    """Where repometer keeps its data and how it talks to git and the database."""

    model_config = SettingsConfigDict(env_prefix="REPOMETER_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    """Data directory: the default SQLite database, mirrors of remote repositories, locks."""

    db_url: str | None = None
    """SQLAlchemy URL of the store; a SQLite file under ``home`` when unset."""

    batch_size: int = Field(default=2000, ge=1)
    """Commits written per database batch during ingestion (bounds memory)."""

    git_timeout: float = Field(default=3600.0, gt=0)
    """Seconds after which a git clone or fetch is killed."""

    git_low_speed_limit: int = Field(default=1000, ge=0)
    """Bytes/s under which a transfer counts as stalled (with ``git_low_speed_time``)."""

    git_low_speed_time: int = Field(default=60, ge=1)
    """Seconds a transfer may stay under ``git_low_speed_limit`` before git aborts it."""

    plugins_dir: Path | None = None
    """A directory of ``*.py`` metric plugins, loaded besides the installed ones."""

    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """Worker processes for work that fans out (content metrics)."""

    dask_address: str | None = None
    """A running ``dask scheduler`` (``tcp://host:8786``); a LocalCluster per run when unset."""

    allow_local_paths: bool = False
    """Whether the REST API and dashboard accept local paths (the CLI always does)."""

    url_schemes: Annotated[list[Scheme], NoDecode] = ["https"]
    """Schemes the REST API and dashboard accept, comma-separated (the CLI takes all three)."""

    allow_private_hosts: bool = False
    """Whether remote hosts may resolve to loopback, private, link-local or CGNAT addresses
    (an internal forge); refused by default, at registration and before every fetch."""

    max_mirror_size: ByteSize = ByteSize(2 * 1024**3)
    """A clone or fetch that makes a mirror larger than this (``2GiB``, ``500MB``) is killed."""

    max_blob_size: ByteSize = DEFAULT_MAX_BLOB_SIZE
    """Files larger than this are not line-counted (their changes are flagged) or read."""

    rename_limit: int = Field(default=DEFAULT_RENAME_LIMIT, ge=0)
    """git's rename-detection limit; commits beyond it are flagged ``renames_skipped``."""

    api_registration_rate: str = "10/hour"
    """How many registrations one client may attempt through the REST API (``N/second``,
    ``N/minute``, ``N/hour`` or ``N/day``)."""

    api_token: str | None = None
    """When set, the REST API's write endpoints require ``Authorization: Bearer <token>``."""

    @field_validator("url_schemes", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_registration_rate")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        try:
            rate = limits.parse(value)
        except ValueError:
            rate = None
        if rate is None or rate.amount < 1:
            raise ValueError(
                f"{value[:60]!r} is not a rate: write N/second, N/minute, N/hour or N/day "
                "with N >= 1 (e.g. 10/hour)"
            )
        return value

    @property
    def registration_limit(self) -> limits.RateLimitItem:
        return limits.parse(self.api_registration_rate)

    def as_environment(self) -> dict[str, str]:
        """These settings as ``REPOMETER_*`` variables, for the processes a run starts;
        unset optional fields map to None (to be removed from the environment)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if name == "db_url":
                value = self.database_url
            if isinstance(value, list):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = str(value).lower()
            env[f"REPOMETER_{name.upper()}"] = None if value is None else str(value)
        return env

    @property
    def mirrors_dir(self) -> Path:
        return self.home / "mirrors"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'repometer.db'}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and ``overrides``; a value that cannot be used is an
    ``InvalidSettingError`` naming its variable, in one line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise InvalidSettingError("; ".join(map(_problem, exc.errors()))) from None


def _problem(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    value = repr(error["input"])[:60]
    if value not in message:
        message += f" (got {value})"
    return f"REPOMETER_{str(error['loc'][0]).upper()}: {message}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()
