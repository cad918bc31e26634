"""Repository-wide pytest set-up: the Cairn fixtures (local stack, fresh databases)."""

pytest_plugins = ["cairn_testing.fixtures"]
