"""An independent model of the streamed weight schedule, in exact fractions, for the tests.

The layer's tiles of B bytes lie back to back in DRAM and stream as whole bursts of S bytes,
each read once, at the bandwidth from a latency after the start. Tile i has arrived when every
burst up to its last byte has. The stream stops while tile i's buffer slot is busy (fold i - 2
still computing) and resumes when it frees. Folds take T cycles and run in order, each once its
tile has arrived.
"""

import math
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Schedule:
    cycles: int  # without the pipeline depth
    latency: int
    first_arrival: int  # x_0: cycles from the first data to tile 0's arrival
    stream_cycles: int  # M: cycles to stream every burst without pause
    dram_bytes: int
    folds_waited: bool  # a fold after the first waited for its tile
    stream_paused: bool
    last_fold_waited: bool  # the last fold started when its tile arrived


def stream(folds, tokens, tile, burst, clock_hz, bandwidth, latency_ns, buffers=2):
    """Step the schedule of ``folds`` tiles of ``tile`` bytes, times in exact fractions."""
    clock = Fraction(clock_hz)
    latency = math.ceil(Fraction(latency_ns, 10**9) * clock)
    cycles_per_byte = clock / bandwidth
    ends = []
    segment_start, segment_base, previous_needed = Fraction(latency), 0, 0
    waited = paused = last_waited = False
    for i in range(folds):
        needed = math.ceil(Fraction((i + 1) * tile, burst)) * burst
        if i >= buffers:
            free = ends[i - buffers]
            reached = segment_start + (previous_needed - segment_base) * cycles_per_byte
            if free > reached:
                segment_start, segment_base, paused = Fraction(free), previous_needed, True
        arrival = math.ceil(segment_start + (needed - segment_base) * cycles_per_byte)
        previous = ends[-1] if ends else 0
        waited |= i > 0 and arrival > previous
        last_waited = arrival >= previous
        ends.append(max(previous, arrival) + tokens)
        previous_needed = needed
    total = math.ceil(Fraction(folds * tile, burst)) * burst
    return Schedule(
        cycles=ends[-1],
        latency=latency,
        first_arrival=math.ceil(math.ceil(Fraction(tile, burst)) * burst * cycles_per_byte),
        stream_cycles=math.ceil(total * cycles_per_byte),
        dram_bytes=total,
        folds_waited=waited,
        stream_paused=paused,
        last_fold_waited=last_waited,
    )


def closed_form_is_exact(schedule):
    """The cases where `sim.evaluate_layer`'s closed form must equal the stepped schedule."""
    no_wait = not schedule.folds_waited
    steady_stream = not schedule.stream_paused and schedule.last_fold_waited
    return no_wait or steady_stream
