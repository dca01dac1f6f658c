"""Conformance suites for the Estuary protocol, keyed to the requirement IDs of protocol.md.

Run with ``pytest --pyargs conformance`` against the embedded fake server, or add
``--estuary-live --estuary-url URL --estuary-api-key KEY`` for a real or staging server.
"""
