"""Secret values in the config and in adapter options: a literal, `{env: NAME}` or `{file: /path}`, held as SecretStr.

Secrets are resolved once at load and never logged: SecretStr prints as
'**********' in repr, str and JSON dumps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, WithJsonSchema


def resolve_secret(value: Any) -> Any:
    """A literal, `{env: NAME}` or `{file: /path}` → the secret text (ValueError says what is missing)."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            name = str(value["env"])
            if name not in os.environ:
                raise ValueError(f"environment variable {name} is not set")
            return os.environ[name]
        if set(value) == {"file"}:
            path = Path(str(value["file"])).expanduser()
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
        raise ValueError("a secret is a string, {env: NAME} or {file: /path}")
    return value


#: what editors may offer for a secret (the JSON Schema of `evbridge schema`)
SECRET_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "writeOnly": True},
        *(
            {
                "type": "object",
                "properties": {key: {"type": "string"}},
                "required": [key],
                "additionalProperties": False,
            }
            for key in ("env", "file")
        ),
    ],
    "description": "a literal, {env: NAME} or {file: /path}; never logged",
}

Secret = Annotated[SecretStr, BeforeValidator(resolve_secret), WithJsonSchema(SECRET_JSON_SCHEMA)]
