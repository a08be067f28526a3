"""The recognizer stage of one device: journaled readings in, stored transactions out.

It takes the device's journaled readings in order, feeds its recognizer, and stores in ONE
SQLite transaction (the store's group commit): the transactions (outbox rows), the rejected
readings, the recognizer's snapshot and the journal cursor (the consumed readings deleted). A
kill at any point keeps all of that or none of it; the readings of a lost commit are still in
the journal, and the next start replays them onto the last snapshot. tick() outputs are stored
the same way, with the cursor unchanged.

A commit takes at most `BATCH_READINGS_MAX` readings, and stops taking when its transactions
fill the outbox's free space, so a full outbox holds the stage back reading by reading.
"""

import asyncio
import json
import logging
from collections.abc import Callable, Sequence

from edge_agent.journal import Journal, Taken
from edge_agent.outbox import Outbox
from edge_agent.readings import Reading, Scan
from edge_agent.recognizers.base import Clock, Output, Recognizer, Rejected, TxnDraft

log = logging.getLogger(__name__)

BATCH_READINGS_MAX = 500
STATE_PROBLEM_CHARS_MAX = 500


class Stage:
    def __init__(
        self,
        device: str,
        recognizer: Recognizer,
        journal: Journal,
        outbox: Outbox,
        wake: Callable[[], None],
        tick_s: float,
        clock: Clock,
    ) -> None:
        self.device = device
        self._recognizer = recognizer
        self._journal = journal
        self._outbox = outbox
        self._wake = wake  # new rows are in the outbox: the publisher's cue
        self._tick_s = tick_s
        self._clock = clock

    async def run(self) -> None:
        await self._resume()
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self._tick_s
        while True:
            if loop.time() >= next_tick:
                next_tick = loop.time() + self._tick_s
                await self._store(self._guard(None), None)
            elif (entry := self._journal.take(self.device)) is not None:
                await self._consume(*entry)
            else:
                await self._journal.wait(self.device, next_tick)

    async def _resume(self) -> None:
        """Restore the snapshot on file; one that cannot be restored is kept aside."""
        stored = self._journal.state(self.device)
        if stored is None:
            return
        try:
            self._recognizer.restore(json.loads(stored))
        except Exception as e:
            problem = repr(e)[:STATE_PROBLEM_CHARS_MAX]
        else:
            return
        log.error(
            "device %s: recognizer state on file cannot be restored (%s); starting fresh,"
            " the state is kept in recognizer_state_bad",
            self.device,
            problem,
        )
        await self._journal.set_aside(self.device, problem)

    async def _consume(self, seq: int, first: Reading | Rejected) -> None:
        """Feed readings from `first` on, up to what one commit takes, and store the outputs."""
        outputs = list(self._feed(first))
        last, count = seq, 1
        space = max(1, self._outbox.space())
        drafts = sum(isinstance(o, TxnDraft) for o in outputs)
        while count < BATCH_READINGS_MAX and drafts < space:
            entry = self._journal.take(self.device)
            if entry is None:
                break
            last, reading = entry
            more = self._feed(reading)
            drafts += sum(isinstance(o, TxnDraft) for o in more)
            outputs.extend(more)
            count += 1
        await self._store(outputs, Taken(seq, last, count))

    def _feed(self, reading: Reading | Rejected) -> Sequence[Output]:
        if isinstance(reading, Rejected):  # a journal row that does not decode
            return [reading]
        return self._guard(reading)

    def _guard(self, reading: Reading | None) -> Sequence[Output]:
        """A recognizer bug must not stop the device: keep the reading as rejected."""
        try:
            if reading is None:
                return self._recognizer.tick()
            return self._recognizer.feed(reading)
        except Exception as e:
            log.exception("device %s: recognizer failed", self.device)
            reason = f"recognizer error: {e!r}"
            if reading is None:
                return [Rejected(self.device, "(tick)", reason, self._clock())]
            raw = reading.raw if isinstance(reading, Scan) else repr(reading)
            return [Rejected(self.device, raw, reason, reading.at)]

    async def _store(self, outputs: Sequence[Output], taken: Taken | None) -> None:
        state = json.dumps(self._recognizer.snapshot())
        if not outputs and taken is None and state == self._journal.state(self.device):
            return
        drafts = [o for o in outputs if isinstance(o, TxnDraft)]
        rejected = [o for o in outputs if isinstance(o, Rejected)]
        for r in rejected:
            log.info("device %s: rejected %r: %s", r.device, r.raw, r.reason)
        along = self._journal.consume_op(self.device, taken, state)
        made = await self._outbox.add(drafts, rejected=rejected, along=along)
        self._journal.consumed(self.device, taken, state)
        if made:
            self._wake()
