"""What ``check`` found, drawn where engineers look at graphs.

- :mod:`.model_explorer`: per-EP node data for Google's Model Explorer (with the
  ``model-explorer-onnx`` adapter), keyed to the weightless analysed graph written beside it;
- :mod:`.netron`: an annotated copy of that graph (each node's EP, partition and reason in its
  ``doc_string`` and ``metadata_props``) that Netron shows as it is;
- :mod:`.nodes`: which check result belongs to which node of the analysed graph.
"""
