"""Reading and validating the config file, with one clear line per problem."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from edgegate.config.models import READER_TYPES, Config
from edgegate.errors import EdgegateError

DEFAULT_PATH = Path("/etc/edgegate/edgegate.toml")


class ConfigError(EdgegateError, ValueError):
    """The config file is missing, not TOML, or not valid. ``problems`` has one line each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


def _key(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif parts and parts[-1].endswith("]") and item in READER_TYPES:
            continue  # the discriminator tag pydantic inserts into the location
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def format_errors(path: Path, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{path}: {_key(err['loc'])}: {msg}")
    return lines


def parse(data: dict, path: Path) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, format_errors(path, exc)) from None


def read_toml(path: Path) -> dict:
    """The file's TOML as a dict, or ConfigError with one line (shared by the central config)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"{path}: not valid TOML: {exc}"]) from None
    return data


def load(path: Path | str) -> Config:
    path = Path(path)
    return parse(read_toml(path), path)


def load_trusted(path: Path | str) -> Config:
    """``load``, then refuse (ConfigError, one line per file naming the fix) when a file that
    carries trust or secrets can be written by someone else (see ``file_trust``). What
    ``run`` and ``check-config`` use; doctor reports the same problems as checks."""
    from edgegate.config.file_trust import file_problems

    path = Path(path)
    config = load(path)
    fatal = [p.line() for p in file_problems(path, config) if p.fatal]
    if fatal:
        raise ConfigError(path, fatal)
    return config
