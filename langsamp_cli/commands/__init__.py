"""One module per CLI command; each defines ``register(app, eval_app)`` (see cli.py)."""
