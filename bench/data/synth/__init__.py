"""The embedded face world: its renderer, the synthetic FR and FAS data it renders, and their on-disk stand-ins.

Rendering code (`world`, `media`, `raster`, `fr`, `fas`, `export`) is what the render cache key
fingerprints (`export.RENDER_SOURCES`); `readback` and `in_memory` only read or re-render it.
"""
