"""Reference-fixture generator for tlkit (see Fixtures/README.md).

Each fixture group lives in its own module and exposes ``build(ctx)``; the
registry in ``make_fixtures.py`` maps group names to those functions.
"""
