"""nsqpy.httpapi.pct is urllib.parse's percent-encoding (without importing urllib)."""
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from nsqpy.httpapi.pct import quote, unquote_to_bytes

_URLISH = st.lists(st.sampled_from(list("%aZ09-_.~/ +&=?#éF\x00") + ["%2", "%zz", "%4A", "%c3%a9"])
                   ).map("".join)


@given(_URLISH)
def test_unquote_to_bytes_matches_urllib(s):
    assert unquote_to_bytes(s) == urllib.parse.unquote_to_bytes(s)


@given(st.binary(), st.sampled_from(["/", "", "/!$&'()*+,;=:@", "~"]))
def test_quote_matches_urllib(b, safe):
    assert quote(b, safe=safe) == urllib.parse.quote(b, safe=safe)


def test_malformed_escapes_are_kept():
    assert unquote_to_bytes("a%zzb%4") == b"a%zzb%4"
    assert unquote_to_bytes("%41%2f") == b"A/"
