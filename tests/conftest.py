"""Shared by the project's own tests: pytester is used by the plugin tests."""

pytest_plugins = ["pytester"]
