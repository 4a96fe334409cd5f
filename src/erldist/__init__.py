"""erldist: a Python process as a real node of an Erlang distribution cluster.

Synchronous code uses ``erldist.cluster`` (the seed's API); asyncio code uses
``Node`` directly. Terms travel as plain Python values plus the types below.
"""

from erldist import cluster, config, telemetry
from erldist.core import core_name
from erldist.errors import (
    AlreadyStarted,
    ConnectAtomBudgetExceeded,
    ConnectError,
    ConnectFailed,
    ConnectIgnored,
    DecodeError,
    EncodeError,
    EpmdError,
    ErldistError,
    InvalidCookieFormat,
    InvalidNodeFormat,
    InvalidNodeName,
    LocalProtocolError,
    NetworkError,
    ProtocolError,
    RemoteProtocolError,
    StartAtomBudgetExceeded,
    StartError,
    StartFailed,
    connect_error_to_string,
    start_error_to_string,
)
from erldist.events import ClusterEvent, NodeDown, NodeUp
from erldist.health import ClusterHealth
from erldist.monitor import ClusterMonitor, Subject
from erldist.runtime.mailbox import Mailbox, MailboxClosed
from erldist.runtime.node import Node
from erldist.term import decode, encode
from erldist.term.types import (
    Atom,
    BitBinary,
    Export,
    FrozenList,
    FrozenMap,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyStarted",
    "Atom",
    "BitBinary",
    "ClusterEvent",
    "ClusterHealth",
    "ClusterMonitor",
    "ConnectAtomBudgetExceeded",
    "ConnectError",
    "ConnectFailed",
    "ConnectIgnored",
    "DecodeError",
    "EncodeError",
    "EpmdError",
    "ErldistError",
    "Export",
    "FrozenList",
    "FrozenMap",
    "Fun",
    "ImproperList",
    "InvalidCookieFormat",
    "InvalidNodeFormat",
    "InvalidNodeName",
    "LocalProtocolError",
    "Mailbox",
    "MailboxClosed",
    "NetworkError",
    "Node",
    "NodeDown",
    "NodeUp",
    "Pid",
    "Port",
    "ProtocolError",
    "Reference",
    "RemoteProtocolError",
    "StartAtomBudgetExceeded",
    "StartError",
    "StartFailed",
    "Subject",
    "cluster",
    "config",
    "connect_error_to_string",
    "core_name",
    "decode",
    "encode",
    "start_error_to_string",
    "telemetry",
]
