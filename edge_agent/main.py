"""`stockwire edge --config FILE`: run one edge agent until SIGINT/SIGTERM."""

import asyncio
import logging
import signal
from pathlib import Path

from edge_agent.agent import run_agent
from edge_agent.settings import load_edge_settings
from stockwire import logs
from stockwire.errors import ConfigError

log = logging.getLogger(__name__)


async def run(config: Path) -> int:
    settings = load_edge_settings(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        log.info(
            "edge %s/%s starting (%d device(s))",
            settings.site,
            settings.edge,
            len(settings.devices),
            extra=logs.about(edge=settings.edge),
        )
        await run_agent(settings, stop=stop)
    except ConfigError as e:  # a device the file describes (its profile, its transport)
        raise ConfigError(f"{config}: {e}") from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info(
        "edge %s/%s stopped", settings.site, settings.edge, extra=logs.about(edge=settings.edge)
    )
    return 0
