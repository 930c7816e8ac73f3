"""Helpers shared by the test suites: protobuf wire builders (``wire``) and an in-process
proxy of real parts (``inproc``). On the import path through ``pythonpath`` in
pyproject.toml, so no test edits ``sys.path``."""
