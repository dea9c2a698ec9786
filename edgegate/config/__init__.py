from edgegate.config.load import DEFAULT_PATH, ConfigError, load, parse
from edgegate.config.models import Config

__all__ = ["DEFAULT_PATH", "Config", "ConfigError", "load", "parse"]
