"""Region proposals before learned ones: sliding windows and Selective Search."""
from .felzenszwalb import felzenszwalb  # noqa: F401
from .selective_search import SelectiveSearch, selective_search  # noqa: F401
from .sliding_window import (count_windows, detect_sliding_window, pyramid_sizes,  # noqa: F401
                             sliding_windows)
