"""nsqpy.protocol: sans-IO implementation of the NSQ TCP protocol V2.

No sockets, no asyncio: framing, message layout, command parsing/encoding,
IDENTIFY negotiation, names, message IDs and Go-style quoting.
"""

from .commands import (
    COMMAND_CLASSES, MAGIC_V2, SKIP, Auth, Cls, Command, CommandParser, Dpub, Fin,
    Identify, Limits, Mpub, Nop, Pub, Rdy, Req, Sub, Touch, encode_auth, encode_cls,
    encode_dpub, encode_fin, encode_identify, encode_mpub, encode_nop, encode_pub,
    encode_rdy, encode_req, encode_sub, encode_touch, parse_base10,
)
from .errors import NON_FATAL_CODES, ProtocolError
from .frames import (
    CLOSE_WAIT_FRAME, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE,
    HEARTBEAT_DATA, HEARTBEAT_FRAME, OK_FRAME, FrameDecoder, encode_error, encode_frame,
    encode_message_frame, encode_response,
)
from .goquote import go_quote
from .identify import (
    IdentifyConfig, IdentifyData, ServerFeatures, feature_negotiation_response,
    negotiated_deflate_level, parse_identify,
)
from .ids import IDGenerationError, IDGenerator, default_node_id
from .message import MSG_HEADER_SIZE, MSG_ID_LENGTH, decode_message, encode_message
from .names import is_ephemeral, is_valid_channel_name, is_valid_name, is_valid_topic_name

__all__ = [
    "ProtocolError", "NON_FATAL_CODES",
    "FRAME_TYPE_RESPONSE", "FRAME_TYPE_ERROR", "FRAME_TYPE_MESSAGE", "encode_frame",
    "encode_response", "encode_error", "encode_message_frame", "OK_FRAME",
    "HEARTBEAT_FRAME", "HEARTBEAT_DATA", "CLOSE_WAIT_FRAME", "FrameDecoder",
    "MSG_HEADER_SIZE", "MSG_ID_LENGTH", "encode_message", "decode_message",
    "is_valid_topic_name", "is_valid_channel_name", "is_valid_name", "is_ephemeral",
    "go_quote", "IDGenerator", "IDGenerationError", "default_node_id",
    "MAGIC_V2", "SKIP", "Limits", "CommandParser", "Command", "COMMAND_CLASSES",
    "Identify", "Auth", "Sub", "Rdy", "Fin", "Req", "Touch", "Cls", "Nop", "Pub", "Mpub",
    "Dpub", "parse_base10",
    "encode_identify", "encode_auth", "encode_sub", "encode_rdy", "encode_fin",
    "encode_req", "encode_touch", "encode_cls", "encode_nop", "encode_pub",
    "encode_mpub", "encode_dpub",
    "IdentifyConfig", "IdentifyData", "ServerFeatures", "parse_identify",
    "feature_negotiation_response", "negotiated_deflate_level",
]
