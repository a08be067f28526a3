"""Build the aggregator's aiomqtt client from settings: persistent session, stable client id."""

import socket

import aiomqtt

from aggregator.settings import MqttSettings


def client(settings: MqttSettings) -> aiomqtt.Client:
    return aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=settings.client_id,
        clean_session=False,
        username=settings.username,
        password=settings.password_text(),
        keepalive=settings.keepalive_s,
        tls_context=settings.tls_context(),
        timeout=10,
        max_queued_incoming_messages=settings.incoming_messages_max,
        # paho leaves Nagle on: a burst of acks would then wait on the broker's delayed ACKs.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
