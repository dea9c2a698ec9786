"""Door event types both sides act on (docs/mqtt.md): the door sounds its alarm output on
these, and the office silences it (signed ``silence``) when an operator acknowledges one."""

from __future__ import annotations

# Journal events that sound the door's alarm output ([gpio] siren). Never ``duress``.
SIREN_ALARMS = frozenset({"door_forced", "door_held_open", "tailgating"})
