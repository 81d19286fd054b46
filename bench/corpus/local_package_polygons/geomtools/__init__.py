from .shapes import Circle, Polygon, regular_polygon

__all__ = ["Circle", "Polygon", "regular_polygon"]
