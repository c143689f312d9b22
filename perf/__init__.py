"""facebench's performance harness (not tests): attack throughput against a bare torch loop and the libraries.

`python -m perf` (or `make bench`) runs every registered benchmark case, prints a table and writes
`perf/results.json`. Cases are registered in `perf.cases`; timing is interleaved (A B A B ...) in
one process with medians over repeats, so load on a shared machine hits every contender alike.
"""
