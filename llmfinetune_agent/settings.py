"""Service settings from the environment, and the database URL rules both stores share.

One setting, `FINETUNE_AGENT_DATABASE_URL`, picks the database for the LangGraph checkpointer
and the run store alike: SQLite under the home directory by default, Postgres when the URL is
`postgresql://...`. Reading settings never touches the disk; `Settings.ensure_dirs()` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from models.paths import BACKENDS_DIR_ENV, DEFAULT_HOME, HOME_ENV, why_not_made
from phases.user_functions import METRIC_MODULES_SETTING, modules_from_env

DATABASE_URL_ENV = "FINETUNE_AGENT_DATABASE_URL"
LEASE_SECONDS_ENV = "FINETUNE_AGENT_LEASE_SECONDS"
DATA_ROOTS_ENV = "FINETUNE_AGENT_DATA_ROOTS"
API_KEY_ENV = "FINETUNE_AGENT_API_KEY"
MAX_CONCURRENT_RUNS_ENV = "FINETUNE_AGENT_MAX_CONCURRENT_RUNS"
# Each concurrent run is a process holding its own model: beyond this a machine runs out of
# memory long before it runs out of runs (100,000 asked for was an out-of-memory kill).
MAX_CONCURRENT_RUNS = 64
MAX_JSON_BYTES_ENV = "FINETUNE_AGENT_MAX_JSON_BYTES"
GENERATION_MAX_BATCH_ENV = "FINETUNE_AGENT_GENERATION_MAX_BATCH"
GENERATION_BATCH_WINDOW_MS_ENV = "FINETUNE_AGENT_GENERATION_BATCH_WINDOW_MS"
BACKEND_ENV = "FINETUNE_AGENT_BACKEND"
RAY_ADDRESS_ENV = "FINETUNE_AGENT_RAY_ADDRESS"
CORS_ORIGINS_ENV = "FINETUNE_AGENT_CORS_ORIGINS"
TOOL_MODULES_ENV = "FINETUNE_AGENT_TOOL_MODULES"
REWARD_MODULES_ENV = "FINETUNE_AGENT_REWARD_MODULES"
METRIC_MODULES_ENV = METRIC_MODULES_SETTING
"""Read where a metric is computed (a worker process, the CLI's `evaluate`), not kept here."""
CHAT_MODEL_MODULES_ENV = "FINETUNE_AGENT_CHAT_MODEL_MODULES"
"""Modules beyond LangChain's packages whose chat model classes a config may name."""
DEFAULT_MAX_JSON_BYTES = 4 * 1024 * 1024
BACKENDS = ("local", "ray")

_POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://")


class SettingsError(ValueError):
    """An environment variable or database URL has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    """Where the service keeps its files and database, and how it runs."""

    home: Path
    """Home directory (runs, model cache, default SQLite database)."""
    database_url: str
    """Database for checkpoints and the run store: `sqlite:///...` or `postgresql://...`."""
    lease_seconds: int = 60
    """How long a run's claim lives without a heartbeat before another worker may take it."""
    data_roots: list[Path] = field(default_factory=list)
    """Directories run configs may read data files from."""
    api_key: str | None = None
    """If set, the REST API requires this key."""
    max_concurrent_runs: int = 1
    """How many runs execute at once in one service process."""
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    """The largest JSON request body the API reads (413 above it); files go to `POST /data`."""
    generation_max_batch: int = 16
    """The most concurrent generate requests for one model answered by one generation call."""
    generation_batch_window_ms: int = 25
    """How long a generation batch that is not full waits for more requests to join it."""
    backend: str = "local"
    """Where runs execute: `local` (worker processes of this machine) or `ray` (a Ray cluster)."""
    ray_address: str | None = None
    """The Ray cluster to connect to (`ray://host:10001`, `host:6379`); None: Ray's own default
    (`RAY_ADDRESS`, else the cluster started on this machine by `ray start`)."""
    backends_root: Path | None = None
    """Where training backends' environments live (None: `<home>/backends`)."""
    cors_origins: list[str] = field(default_factory=list)
    """Origins of browser apps served elsewhere (e.g. Agent Inbox) allowed to call the API."""
    tool_modules: list[str] = field(default_factory=list)
    """Modules (and their submodules) whose functions a chat may use as tools."""
    reward_modules: list[str] = field(default_factory=list)
    """Modules (and their submodules) whose functions a GRPO/RLOO run may use as rewards."""

    @classmethod
    def from_env(cls) -> Settings:
        """Read settings from `FINETUNE_AGENT_*` environment variables, with defaults."""
        home = Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()
        database_url = os.environ.get(DATABASE_URL_ENV) or default_database_url(home)
        database_backend(database_url)  # fail early, naming the variable's value
        roots_text = os.environ.get(DATA_ROOTS_ENV)
        if roots_text:
            roots = [Path(p).expanduser().resolve() for p in roots_text.split(os.pathsep) if p]
        else:
            roots = [home / "data", Path.cwd().resolve()]
        return cls(
            home=home,
            database_url=database_url,
            lease_seconds=_positive_int_env(LEASE_SECONDS_ENV, 60),
            data_roots=roots,
            api_key=os.environ.get(API_KEY_ENV) or None,
            max_concurrent_runs=_positive_int_env(MAX_CONCURRENT_RUNS_ENV, 1, MAX_CONCURRENT_RUNS),
            max_json_bytes=_positive_int_env(MAX_JSON_BYTES_ENV, DEFAULT_MAX_JSON_BYTES),
            generation_max_batch=_positive_int_env(GENERATION_MAX_BATCH_ENV, 16),
            generation_batch_window_ms=_positive_int_env(GENERATION_BATCH_WINDOW_MS_ENV, 25),
            backend=_backend_env(),
            ray_address=os.environ.get(RAY_ADDRESS_ENV) or None,
            backends_root=_path_env(BACKENDS_DIR_ENV),
            cors_origins=_origins_env(CORS_ORIGINS_ENV),
            tool_modules=modules_from_env(TOOL_MODULES_ENV),
            reward_modules=modules_from_env(REWARD_MODULES_ENV),
        )

    @property
    def runs_dir(self) -> Path:
        """`<home>/runs`: one directory of artifacts per run."""
        return self.home / "runs"

    @property
    def models_cache_dir(self) -> Path:
        """`<home>/models`: built-in models and imported GGUF files."""
        return self.home / "models"

    @property
    def backends_dir(self) -> Path:
        """Training backends' environments (`finetune-agent backends install autotrain`)."""
        return self.backends_root or self.home / "backends"

    def ensure_dirs(self) -> None:
        """Create the home, runs and model-cache directories (and the SQLite file's folder);
        a `SettingsError` naming the setting when one cannot be a folder."""
        for directory in (self.home, self.runs_dir, self.models_cache_dir):
            make_folder(directory, HOME_ENV)
        if database_backend(self.database_url) == "sqlite":
            path = sqlite_path(self.database_url)
            if path != ":memory:":
                make_sqlite_folder(path)


def make_folder(directory: Path, setting: str) -> None:
    """`directory` and its parents, made; a `SettingsError` naming `setting` when a file (or
    a device, or a folder it may not write) is in the way, instead of an OSError traceback."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"cannot make the folder {directory}: {why_not_made(exc, directory)}. Check {setting}"
            + (f"={os.environ[setting]!r}" if os.environ.get(setting) else "")
            + "."
        ) from None


def make_sqlite_folder(path: str | Path) -> None:
    """The folder of a SQLite database file, made (see `make_folder`); the setting named is
    the database URL when one is set, else the home the default database lives in."""
    setting = DATABASE_URL_ENV if os.environ.get(DATABASE_URL_ENV) else HOME_ENV
    make_folder(Path(path).parent, setting)


def _path_env(name: str) -> Path | None:
    text = os.environ.get(name)
    return Path(text).expanduser().resolve() if text else None


def _positive_int_env(name: str, default: int, most: int | None = None) -> int:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a whole number.") from None
    if value < 1:
        raise SettingsError(f"{name}={text!r} must be 1 or more.")
    if most is not None and value > most:
        raise SettingsError(f"{name}={text!r} must be at most {most}.")
    return value


def _backend_env() -> str:
    value = (os.environ.get(BACKEND_ENV) or "local").strip().lower()
    if value not in BACKENDS:
        raise SettingsError(
            f"{BACKEND_ENV}={value!r} is not a backend: use 'local' (this machine's worker "
            "processes) or 'ray' (a Ray cluster; set FINETUNE_AGENT_RAY_ADDRESS)."
        )
    return value


def _origins_env(name: str) -> list[str]:
    """Comma-separated origins (`https://inbox.example.com,http://localhost:3000`, or `*`)."""
    origins = [o.strip().rstrip("/") for o in (os.environ.get(name) or "").split(",") if o.strip()]
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise SettingsError(
                f"{name}: {origin!r} is not an origin; give scheme and host, e.g. "
                "https://inbox.example.com (comma-separated), or * for any."
            )
    return origins


def default_database_url(home: Path) -> str:
    """The embedded default: a SQLite file in the home directory."""
    return f"sqlite:///{home / 'finetune-agent.db'}"


def database_backend(database_url: str) -> str:
    """`"sqlite"` or `"postgresql"`; any other URL is a `SettingsError`."""
    if database_url.startswith("sqlite://"):
        return "sqlite"
    if database_url.startswith(_POSTGRES_PREFIXES):
        return "postgresql"
    raise SettingsError(
        f"Unsupported database URL {redacted_url(database_url)!r} in {DATABASE_URL_ENV}: "
        "use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname."
    )


def sqlalchemy_url(database_url: str) -> str:
    """The URL for SQLAlchemy: Postgres URLs get the psycopg 3 driver."""
    if database_backend(database_url) == "postgresql":
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return database_url


def psycopg_conninfo(database_url: str) -> str:
    """The URL for psycopg itself (no SQLAlchemy driver suffix)."""
    if database_backend(database_url) != "postgresql":
        raise SettingsError(f"{redacted_url(database_url)!r} is not a postgresql:// URL.")
    return "postgresql://" + database_url.split("://", 1)[1]


def sqlite_path(database_url: str) -> str:
    """The file path in a `sqlite:///path` URL (`:memory:` for an in-memory database)."""
    if database_backend(database_url) != "sqlite":
        raise SettingsError(f"{redacted_url(database_url)!r} is not a sqlite:/// URL.")
    rest = database_url[len("sqlite://") :].split("?", 1)[0]
    if rest in ("", "/", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise SettingsError(
            f"SQLite URL {database_url!r} needs three slashes: sqlite:///relative.db "
            "or sqlite:////absolute/path.db."
        )
    return unquote(rest[1:])


def redacted_url(database_url: str) -> str:
    """The URL with any password replaced, for error messages."""
    scheme, sep, rest = database_url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return database_url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
