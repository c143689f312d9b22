"""The data: item containers (`sets`), the embedded face world (`synth`) and the real datasets' loaders (`real`).

Named evaluation protocols over this data live in `bench.protocols`.
"""
