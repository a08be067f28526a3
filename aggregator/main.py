"""`stockwire aggregator --config FILE`: run until SIGINT or SIGTERM."""

import asyncio
import logging
import signal
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import AggregatorError
from aggregator.service import run_aggregator
from aggregator.settings import AggregatorSettings
from stockwire import heap
from stockwire.config import load_settings

log = logging.getLogger(__name__)


async def run(config: Path) -> int:
    settings = load_settings(AggregatorSettings, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop_on, sig, stop)
    try:
        # Serving: what startup made stays; collections stop walking it (stockwire.heap).
        await run_aggregator(settings, stop=stop, on_ready=lambda _url: heap.settle())
    except (AggregatorError, SQLAlchemyError) as e:  # a DatabaseUrlError is a ConfigError: 2
        log.error("aggregator: %s", e)  # noqa: TRY400  (a clear message, not a traceback)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def _stop_on(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("aggregator: %s received, stopping", sig.name)
    stop.set()
