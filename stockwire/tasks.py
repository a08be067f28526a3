"""asyncio helpers both programs need."""

import asyncio


def cancelling() -> bool:
    """Is the current task being cancelled?

    aiomqtt's disconnect can turn a cancellation into an MqttError; a reconnect loop that
    catches MqttError must re-raise it as a cancellation then, or it reconnects forever.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
