"""Write `mappings/modbus.schema.json` from the pydantic mapping model: `python -m adapters.modbus.schema`."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.modbus.mapping import mapping_schema

if __name__ == "__main__":
    target = Path(__file__).resolve().parents[2] / "mappings" / "modbus.schema.json"
    target.write_text(json.dumps(mapping_schema(), indent=2) + "\n")
    print(f"wrote {target}")
