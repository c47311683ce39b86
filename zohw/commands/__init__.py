"""Subcommands of the ``zohw`` console entry point: one module per command.

Each module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed arguments and returning an exit code.
"""

COMMANDS = ("demo", "generate", "sim", "resources", "explore", "train", "cache")
