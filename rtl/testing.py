"""Stream helpers for Amaranth's own simulator (`amaranth.sim`), used by the fast unit tests.

A producer and a consumer run as separate testbenches; random idle cycles and backpressure
come from a seeded `random.Random`.
"""

import random

from amaranth.hdl import Value

__all__ = ["stream_get", "stream_put"]


async def stream_put(ctx, stream, payloads, *, rng: random.Random | None = None, idle=0.0):
    """Send each payload on ``stream``, holding ``valid`` low on random idle cycles.

    A payload is an int (the raw word) or what `ctx.set` takes for the payload's shape.

    Returns the tick index (counted from the testbench's start) at which each was taken.
    """
    ticks = []
    tick = 0
    for payload in payloads:
        while rng is not None and rng.random() < idle:
            ctx.set(stream.valid, 0)
            await ctx.tick()
            tick += 1
        ctx.set(stream.valid, 1)
        if isinstance(payload, int):
            # A raw payload word, as the Verilog port sees it.
            ctx.set(Value.cast(stream.payload), payload)
        else:
            ctx.set(stream.payload, payload)
        while True:
            _, _, ready = await ctx.tick().sample(stream.ready)
            tick += 1
            if ready:
                break
        ticks.append(tick)
    ctx.set(stream.valid, 0)
    return ticks


async def stream_get(ctx, stream, count: int, *, rng: random.Random | None = None, stall=0.0):
    """Receive ``count`` payloads from ``stream``, holding ``ready`` low on random cycles.

    Returns the payloads (as `ctx.get` gives them) and the tick index (counted from the
    testbench's start) at which each was taken.
    """
    payloads, ticks = [], []
    tick = 0
    while len(payloads) < count:
        ready = rng is None or rng.random() >= stall
        ctx.set(stream.ready, int(ready))
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        tick += 1
        if ready and valid:
            payloads.append(payload)
            ticks.append(tick)
    ctx.set(stream.ready, 0)
    return payloads, ticks
