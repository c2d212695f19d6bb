"""One module per capability; each exposes ``run(inputs, options) -> Result``."""
