"""``make bench``: what stopping and waiting cost against the alternatives, measured side by side.

One module per comparison (``parse``, ``wait``, ``triggerer``, ``bulk``), what they share in
``common``, the command line in ``__main__`` (``python -m bench --help``). Not part of the tests:
timings on a shared machine are noisy, so the comparisons are run and printed together.
"""
