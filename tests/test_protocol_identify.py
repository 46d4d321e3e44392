"""IDENTIFY body validation and feature negotiation (tcp-protocol.md §6.1)."""

import json

import pytest

from nsqpy.protocol import (
    IdentifyConfig, ProtocolError, ServerFeatures, encode_response, feature_negotiation_response,
    parse_identify,
)

CFG = IdentifyConfig()


def ident(doc, cfg=CFG):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_identify(body, cfg)


def ident_error(doc, cfg=CFG) -> bytes:
    with pytest.raises(ProtocolError) as ei:
        ident(doc, cfg)
    assert ei.value.fatal
    return ei.value.frame_data()


DECODE_ERR = b"E_BAD_BODY IDENTIFY failed to decode JSON body"


# ---------------------------------------------------------------- defaults


def test_identify_config_defaults_match_nsqd():
    c = IdentifyConfig()
    assert (c.max_heartbeat_interval_ms, c.max_output_buffer_size, c.min_output_buffer_timeout_ms,
            c.max_output_buffer_timeout_ms, c.default_output_buffer_timeout_ms, c.client_timeout_ms,
            c.msg_timeout_ms, c.max_msg_timeout_ms, c.max_deflate_level) == \
        (60000, 65536, 25, 30000, 250, 60000, 60000, 900000, 6)


def test_empty_object_gives_defaults():
    d = ident({})
    assert (d.client_id, d.hostname, d.user_agent, d.feature_negotiation) == ("", "", "", False)
    assert d.heartbeat_interval_ms == 30000
    assert d.output_buffer_size == 16384 and d.output_buffer_timeout_ms == 250
    assert (d.tls_v1, d.snappy, d.deflate, d.deflate_level) == (False, False, False, 6)
    assert d.sample_rate == 0 and d.msg_timeout_ms == 60000


def test_string_fields_stored():
    d = ident({"client_id": "c", "hostname": "h", "user_agent": "go-nsq/1.1.0"})
    assert (d.client_id, d.hostname, d.user_agent) == ("c", "h", "go-nsq/1.1.0")


def test_bool_fields_stored():
    d = ident({"feature_negotiation": True, "tls_v1": True, "snappy": True, "deflate": True})
    assert d.feature_negotiation and d.tls_v1 and d.snappy and d.deflate


# ---------------------------------------------------------------- JSON decoding


def test_invalid_json_is_decode_error():
    assert ident_error(b"{") == DECODE_ERR


def test_trailing_garbage_is_decode_error():
    assert ident_error(b"{} x") == DECODE_ERR


def test_top_level_array_is_decode_error():
    assert ident_error(b"[]") == DECODE_ERR
    assert ident_error(b"[{}]") == DECODE_ERR


def test_top_level_string_or_number_is_decode_error():
    assert ident_error(b'"x"') == DECODE_ERR
    assert ident_error(b"1") == DECODE_ERR


def test_top_level_null_gives_defaults_like_go():
    assert ident(b"null").heartbeat_interval_ms == 30000


def test_unknown_keys_ignored():
    d = ident({"short_id": "s", "long_id": "l", "whatever": [1, {"a": 2.5}]})
    assert d.client_id == ""


def test_null_values_ignored():
    d = ident({"heartbeat_interval": None, "client_id": None, "tls_v1": None})
    assert d.heartbeat_interval_ms == 30000 and d.client_id == "" and not d.tls_v1


def test_null_after_value_keeps_earlier_value():
    assert ident(b'{"msg_timeout":5000,"msg_timeout":null}').msg_timeout_ms == 5000


def test_duplicate_keys_last_wins():
    assert ident(b'{"client_id":"a","client_id":"b"}').client_id == "b"


def test_keys_match_case_insensitively_like_go():
    d = ident({"CLIENT_ID": "x", "Heartbeat_Interval": 2000})
    assert d.client_id == "x" and d.heartbeat_interval_ms == 2000


def test_long_s_folds_to_s_like_go():
    assert ident({"ſnappy": True}).snappy


def test_float_for_int_field_is_decode_error():
    assert ident_error(b'{"heartbeat_interval":1000.0}') == DECODE_ERR


def test_exponent_for_int_field_is_decode_error():
    assert ident_error(b'{"msg_timeout":1e3}') == DECODE_ERR


def test_string_for_int_field_is_decode_error():
    assert ident_error(b'{"sample_rate":"1"}') == DECODE_ERR


def test_bool_for_int_field_is_decode_error():
    assert ident_error(b'{"output_buffer_size":true}') == DECODE_ERR


def test_int_for_bool_field_is_decode_error():
    assert ident_error(b'{"feature_negotiation":1}') == DECODE_ERR


def test_string_for_bool_field_is_decode_error():
    assert ident_error(b'{"tls_v1":"true"}') == DECODE_ERR


def test_number_for_string_field_is_decode_error():
    assert ident_error(b'{"client_id":1}') == DECODE_ERR


def test_object_for_string_field_is_decode_error():
    assert ident_error(b'{"hostname":{}}') == DECODE_ERR


def test_int_overflowing_int64_is_decode_error():
    assert ident_error(b'{"msg_timeout":9223372036854775808}') == DECODE_ERR


def test_sample_rate_overflowing_int32_is_decode_error():
    assert ident_error(b'{"sample_rate":2147483648}') == DECODE_ERR


def test_sample_rate_within_int32_but_invalid_is_sample_rate_error():
    assert ident_error(b'{"sample_rate":2147483647}') == \
        b"E_BAD_BODY IDENTIFY sample rate (2147483647) is invalid"


def test_nan_and_infinity_are_decode_errors():
    assert ident_error(b'{"x":NaN}') == DECODE_ERR
    assert ident_error(b'{"x":Infinity}') == DECODE_ERR


def test_huge_integer_in_unknown_key_ignored():
    assert ident(b'{"x":' + b"9" * 5000 + b"}").client_id == ""


def test_invalid_utf8_in_string_replaced():
    assert ident(b'{"client_id":"a\xffb"}').client_id == "a\ufffdb"


def test_lone_surrogate_escape_replaced():
    assert ident(b'{"client_id":"\\ud800x"}').client_id == "\ufffdx"


def test_utf16_body_is_not_auto_detected():
    assert ident_error('{"client_id":"x"}'.encode("utf-16")) == DECODE_ERR


def test_negative_zero_is_zero():
    assert ident(b'{"heartbeat_interval":-0}').heartbeat_interval_ms == 30000


# ---------------------------------------------------------------- heartbeat_interval


def test_heartbeat_minus_one_disables():
    assert ident({"heartbeat_interval": -1}).heartbeat_interval_ms == -1


def test_heartbeat_zero_is_half_client_timeout():
    assert ident({"heartbeat_interval": 0}).heartbeat_interval_ms == 30000


def test_heartbeat_minus_two_invalid():
    assert ident_error({"heartbeat_interval": -2}) == \
        b"E_BAD_BODY IDENTIFY heartbeat interval (-2) is invalid"


def test_heartbeat_999_invalid_1000_valid():
    assert ident_error({"heartbeat_interval": 999}) == \
        b"E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid"
    assert ident({"heartbeat_interval": 1000}).heartbeat_interval_ms == 1000


def test_heartbeat_max_valid_max_plus_one_invalid():
    assert ident({"heartbeat_interval": 60000}).heartbeat_interval_ms == 60000
    assert ident_error({"heartbeat_interval": 60001}) == \
        b"E_BAD_BODY IDENTIFY heartbeat interval (60001) is invalid"


# ---------------------------------------------------------------- output buffer


def test_output_buffer_timeout_minus_one_disables():
    assert ident({"output_buffer_timeout": -1}).output_buffer_timeout_ms == 0


def test_output_buffer_timeout_zero_is_default():
    cfg = IdentifyConfig(default_output_buffer_timeout_ms=100)
    assert ident({"output_buffer_timeout": 0}, cfg).output_buffer_timeout_ms == 100


def test_output_buffer_timeout_min_bounds():
    assert ident_error({"output_buffer_timeout": 24}) == \
        b"E_BAD_BODY IDENTIFY output buffer timeout (24) is invalid"
    assert ident({"output_buffer_timeout": 25}).output_buffer_timeout_ms == 25


def test_output_buffer_timeout_max_bounds():
    assert ident({"output_buffer_timeout": 30000}).output_buffer_timeout_ms == 30000
    assert ident_error({"output_buffer_timeout": 30001}) == \
        b"E_BAD_BODY IDENTIFY output buffer timeout (30001) is invalid"


def test_output_buffer_timeout_minus_two_invalid():
    assert ident_error({"output_buffer_timeout": -2}) == \
        b"E_BAD_BODY IDENTIFY output buffer timeout (-2) is invalid"


def test_output_buffer_size_minus_one_means_one_and_forces_timeout_zero():
    d = ident({"output_buffer_size": -1, "output_buffer_timeout": 1000})
    assert d.output_buffer_size == 1 and d.output_buffer_timeout_ms == 0


def test_output_buffer_size_zero_is_default():
    assert ident({"output_buffer_size": 0}).output_buffer_size == 16384


def test_output_buffer_size_min_bounds():
    assert ident_error({"output_buffer_size": 63}) == \
        b"E_BAD_BODY IDENTIFY output buffer size (63) is invalid"
    assert ident({"output_buffer_size": 64}).output_buffer_size == 64


def test_output_buffer_size_max_bounds():
    assert ident({"output_buffer_size": 65536}).output_buffer_size == 65536
    assert ident_error({"output_buffer_size": 65537}) == \
        b"E_BAD_BODY IDENTIFY output buffer size (65537) is invalid"


def test_output_buffer_size_minus_two_invalid():
    assert ident_error({"output_buffer_size": -2}) == \
        b"E_BAD_BODY IDENTIFY output buffer size (-2) is invalid"


# ---------------------------------------------------------------- sample rate / msg timeout


def test_sample_rate_bounds():
    assert ident_error({"sample_rate": -1}) == b"E_BAD_BODY IDENTIFY sample rate (-1) is invalid"
    assert ident({"sample_rate": 0}).sample_rate == 0
    assert ident({"sample_rate": 99}).sample_rate == 99
    assert ident_error({"sample_rate": 100}) == b"E_BAD_BODY IDENTIFY sample rate (100) is invalid"


def test_msg_timeout_zero_is_default():
    assert ident({"msg_timeout": 0}, IdentifyConfig(msg_timeout_ms=5000)).msg_timeout_ms == 5000


def test_msg_timeout_min_bounds():
    assert ident_error({"msg_timeout": 999}) == b"E_BAD_BODY IDENTIFY msg timeout (999) is invalid"
    assert ident({"msg_timeout": 1000}).msg_timeout_ms == 1000


def test_msg_timeout_max_bounds():
    assert ident({"msg_timeout": 900000}).msg_timeout_ms == 900000
    assert ident_error({"msg_timeout": 900001}) == \
        b"E_BAD_BODY IDENTIFY msg timeout (900001) is invalid"


def test_msg_timeout_minus_one_invalid():
    assert ident_error({"msg_timeout": -1}) == b"E_BAD_BODY IDENTIFY msg timeout (-1) is invalid"


# ---------------------------------------------------------------- order


def test_validation_order_heartbeat_first():
    doc = {"heartbeat_interval": 1, "output_buffer_timeout": 1, "output_buffer_size": 1,
           "sample_rate": -1, "msg_timeout": 1}
    assert b"heartbeat interval" in ident_error(doc)


def test_validation_order_output_buffer_timeout_before_size():
    doc = {"output_buffer_timeout": 1, "output_buffer_size": 1, "sample_rate": -1, "msg_timeout": 1}
    assert b"output buffer timeout" in ident_error(doc)


def test_validation_order_output_buffer_size_before_sample_rate():
    doc = {"output_buffer_size": 1, "sample_rate": -1, "msg_timeout": 1}
    assert b"output buffer size" in ident_error(doc)


def test_validation_order_sample_rate_before_msg_timeout():
    assert b"sample rate" in ident_error({"sample_rate": -1, "msg_timeout": 1})


def test_decode_error_before_validation():
    assert ident_error(b'{"heartbeat_interval":1,"client_id":5}') == DECODE_ERR


# ---------------------------------------------------------------- deflate level


def test_deflate_level_defaults_to_six():
    assert ident({"deflate": True}).deflate_level == 6


def test_deflate_level_clamped_to_max():
    cfg = IdentifyConfig(max_deflate_level=3)
    assert ident({"deflate": True, "deflate_level": 9}, cfg).deflate_level == 3


def test_deflate_level_requested_below_max_kept():
    cfg = IdentifyConfig(max_deflate_level=9)
    assert ident({"deflate": True, "deflate_level": 8}, cfg).deflate_level == 8


# ---------------------------------------------------------------- negotiation response

DEFAULT_RESPONSE = (
    b'{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,'
    b'"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,'
    b'"sample_rate":0,"auth_required":false,"output_buffer_size":16384,'
    b'"output_buffer_timeout":250}')


def test_feature_negotiation_default_response_matches_spec_bytes():
    body = feature_negotiation_response(ident({"feature_negotiation": True}), ServerFeatures())
    assert body == DEFAULT_RESPONSE
    assert len(encode_response(body)) - 4 == 268


def test_feature_negotiation_reports_client_values():
    d = ident({"feature_negotiation": True, "msg_timeout": 5000, "sample_rate": 10,
               "output_buffer_size": -1})
    doc = json.loads(feature_negotiation_response(d, ServerFeatures()))
    assert (doc["msg_timeout"], doc["sample_rate"], doc["output_buffer_size"],
            doc["output_buffer_timeout"]) == (5000, 10, 1, 0)


def test_feature_negotiation_key_order():
    doc = json.loads(feature_negotiation_response(ident({}), ServerFeatures()))
    assert list(doc) == ["max_rdy_count", "version", "max_msg_timeout", "msg_timeout", "tls_v1",
                         "deflate", "deflate_level", "max_deflate_level", "snappy", "sample_rate",
                         "auth_required", "output_buffer_size", "output_buffer_timeout"]


def test_features_only_when_server_supports_and_client_asks():
    d = ident({"tls_v1": True, "snappy": True})
    off = json.loads(feature_negotiation_response(
        d, ServerFeatures(tls_enabled=False, snappy_enabled=False)))
    assert not off["tls_v1"] and not off["snappy"]
    on = json.loads(feature_negotiation_response(
        d, ServerFeatures(tls_enabled=True, snappy_enabled=True)))
    assert on["tls_v1"] and on["snappy"] and not on["deflate"]
    none = json.loads(feature_negotiation_response(
        ident({}), ServerFeatures(tls_enabled=True, snappy_enabled=True)))
    assert not none["tls_v1"] and not none["snappy"]


def test_deflate_negotiated_reports_requested_level():
    cfg = IdentifyConfig(max_deflate_level=9)
    d = ident({"deflate": True, "deflate_level": 9}, cfg)
    doc = json.loads(feature_negotiation_response(d, ServerFeatures(max_deflate_level=9)))
    assert doc["deflate"] and doc["deflate_level"] == 9 and doc["max_deflate_level"] == 9


def test_deflate_level_is_six_when_server_has_deflate_off():
    d = ident({"deflate": True, "deflate_level": 9}, IdentifyConfig(max_deflate_level=9))
    doc = json.loads(feature_negotiation_response(
        d, ServerFeatures(deflate_enabled=False, max_deflate_level=9)))
    assert not doc["deflate"] and doc["deflate_level"] == 6


def test_deflate_level_capped_by_max_even_when_not_negotiated():
    doc = json.loads(feature_negotiation_response(ident({}), ServerFeatures(max_deflate_level=2)))
    assert doc["deflate_level"] == 2


def test_both_deflate_and_snappy_is_identify_failed():
    d = ident({"deflate": True, "snappy": True})
    with pytest.raises(ProtocolError) as ei:
        feature_negotiation_response(d, ServerFeatures(deflate_enabled=True, snappy_enabled=True))
    assert ei.value.frame_data() == \
        b"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"


def test_auth_required_reported():
    doc = json.loads(feature_negotiation_response(ident({}), ServerFeatures(auth_required=True)))
    assert doc["auth_required"] is True
