from edgegate.config.load import DEFAULT_PATH, ConfigError, load, load_trusted, parse
from edgegate.config.models import Config

__all__ = ["DEFAULT_PATH", "Config", "ConfigError", "load", "load_trusted", "parse"]
