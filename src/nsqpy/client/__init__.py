"""nsqpy.client: an asyncio NSQ client library (consumer, producer, config).

Built on the sans-IO :mod:`nsqpy.protocol`; uses only the public NSQ protocol, so it
works with any nsqd (Go or nsqpy).  Behaviour follows go-nsq 1.1.0: option names and
defaults (:class:`Config`), RDY distribution and backoff, lookupd discovery.

* :class:`Consumer` — handler style or ``async for message in consumer``;
* :class:`Producer` — async PUB / MPUB / DPUB with failover across nsqd;
* :class:`SyncProducer` and :func:`publish` — blocking publishing for scripts;
* :class:`Message` — ``finish()``, ``requeue()``, ``touch()``.
"""

from .config import DEFAULT_USER_AGENT, Config, ConfigError, parse_opt
from .conn import Conn
from .consumer import AlreadyConnectedError, Consumer, Handler
from .errors import (AuthRequiredError, ConnectionClosedError, IdentifyError, NotConnectedError,
                     NSQError, ResponseError)
from .message import Message
from .producer import Producer
from .rdy import RdyController
from .sync import SyncProducer, publish

__all__ = [
    "Config", "ConfigError", "parse_opt", "DEFAULT_USER_AGENT",
    "Consumer", "Handler", "Producer", "SyncProducer", "publish", "Message", "Conn",
    "RdyController",
    "NSQError", "ConnectionClosedError", "NotConnectedError", "AuthRequiredError",
    "IdentifyError", "ResponseError", "AlreadyConnectedError",
]
