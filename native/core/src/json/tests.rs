//! Unit tests on a miniature schema; `tests/test_otlpjson.py` holds the differential
//! tests against the Python codec on the real OTLP schema.
