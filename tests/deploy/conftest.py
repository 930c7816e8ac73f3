"""tests/deploy: offline validation of the deploy kit with the real tools.

The helpers live in deploy_helpers.py, imported by name: pytest's default import mode
puts this directory on the path for its conftest and test modules.
"""
