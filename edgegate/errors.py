"""The root of every edgegate exception.

Each project exception derives from :class:`EdgegateError` *and* from the builtin it means
(as gpiozero's do): a caller may catch "anything edgegate raised" with one ``except``, while
code that only knows the builtin (``except ValueError`` around a parse, ``except OSError``
around a device) keeps catching what it always caught. Domain modules keep their own
exceptions; only the root lives here, so this module imports nothing.
"""

from __future__ import annotations


class EdgegateError(Exception):
    """Anything edgegate itself raised on purpose."""
