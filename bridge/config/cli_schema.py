"""`evbridge schema`: the JSON Schema of the config file, for editor completion."""

from bridge.config.cli import Schema

add_arguments = Schema.add_arguments
run = Schema.run
