"""``hub.renders``: when a live view renders again (the doors board, the alarms page)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from edgegate.central.web.hub import Hub, renders


def test_renders_at_once_then_once_per_burst_and_unsubscribes_when_closed() -> None:
    async def scenario() -> None:
        hub = Hub()
        count = 0
        async with aclosing(renders(hub, "doors", refresh=3600)) as wakes:
            async for _ in wakes:
                count += 1
                assert hub.subscribers == 1
                if count == 1:
                    for _ in range(50):  # a burst: the next render reads all of it once
                        hub.publish("doors", None)
                    hub.publish("alarms", None)  # another topic wakes nothing
                    continue
                assert count == 2
                # Nothing queued is left behind the render: the burst became this one.
                nxt = asyncio.ensure_future(anext(wakes))
                await asyncio.sleep(0.05)
                assert not nxt.done()
                hub.publish("doors", None)
                await nxt
                break
        assert hub.subscribers == 0

    asyncio.run(scenario())


def test_refresh_renders_without_a_wake() -> None:
    async def scenario() -> None:
        hub = Hub()
        seen = 0
        async with aclosing(renders(hub, "alarms", refresh=0.01)) as wakes:
            async for _ in wakes:
                seen += 1
                if seen == 3:
                    break
        assert hub.subscribers == 0

    asyncio.run(scenario())
