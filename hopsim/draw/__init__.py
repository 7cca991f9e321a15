"""Pictures of a topology: the token response's TTL on every link it crosses.

`scene.build` says what to show (values), `layout.layout` where (pixels); the
renderers write it as SVG, PNG (with Pillow, the `draw` extra) or Mermaid, and
`html` as a teaching page with the hop limit on a slider.
"""

from __future__ import annotations

from collections.abc import Sequence

from hopsim.draw import html, layout, mermaid, png, scene, svg
from hopsim.draw.layout import Picture
from hopsim.draw.scene import Scene
from hopsim.topology import Topology

FORMATS = ("svg", "png", "mermaid", "html")
SUFFIXES = {".svg": "svg", ".png": "png", ".mmd": "mermaid", ".mermaid": "mermaid",
            ".html": "html", ".htm": "html"}


def picture(topology: Topology, principals: Sequence[str] | None = None) -> Picture:
    return layout.layout(scene.build(topology, principals))


def render(topology: Topology, output_format: str,
           principals: Sequence[str] | None = None) -> bytes:
    """The picture in one of FORMATS, as bytes (UTF-8 for the text formats)."""
    if output_format == "html":
        return html.render(topology, principals).encode()
    what = scene.build(topology, principals)
    if output_format == "mermaid":
        return mermaid.render(what).encode()
    if output_format == "png":
        return png.render(layout.layout(what))
    return svg.render(layout.layout(what)).encode()


__all__ = ["FORMATS", "SUFFIXES", "Picture", "Scene", "picture", "render"]
