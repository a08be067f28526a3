"""Build the aggregator's aiomqtt client from settings: persistent session, stable client id."""

import socket
import ssl

import aiomqtt

from aggregator.settings import MqttSettings


def client(settings: MqttSettings) -> aiomqtt.Client:
    password = settings.password.get_secret_value() if settings.password else None
    return aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=settings.client_id,
        clean_session=False,
        username=settings.username,
        password=password,
        keepalive=settings.keepalive_s,
        tls_context=_tls(settings),
        timeout=10,
        max_queued_incoming_messages=settings.incoming_messages_max,
        # paho leaves Nagle on: a burst of acks would then wait on the broker's delayed ACKs.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )


def _tls(settings: MqttSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    return ssl.create_default_context(cafile=settings.ca_file)
