"""Opening model files into one read-only graph view; errors; file helpers.

The only package that parses model files.
"""
