"""Configuration: YAML → pydantic, with file:line:column errors and secrets kept secret.

API: `load_config(path) -> LoadedConfig` (`.config`, `.adapter_options`),
`load_config_text(text, source)`, `demo_config_path()`, `resolve_state_dir(config)`;
`bridge.config.cli.config_schema()` is the JSON Schema `evbridge schema` prints.  Secrets in
adapter blocks are masked in `config.chargers[].adapter`; adapters get them from `adapter_options`.
"""

from bridge.config.loader import LoadedConfig, demo_config_path, load_config, load_config_text, resolve_state_dir
from bridge.config.model import BridgeConfig

__all__ = ["BridgeConfig", "LoadedConfig", "demo_config_path", "load_config", "load_config_text", "resolve_state_dir"]
