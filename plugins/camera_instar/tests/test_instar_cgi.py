"""The reply parser and request encoding shared by both CGI styles."""

from __future__ import annotations

import pytest
from alarmcloud.contracts import CameraError
from alarmcloud_camera_instar.cgi import check_set_reply, parse_reply, with_query


def test_parse_both_reply_styles() -> None:
    hi = 'var m1_enable="1";\r\nvar m1_s="50";\r\nvar md_emailsnap_switch="off";\r\n'
    assert parse_reply(hi) == {"m1_enable": "1", "m1_s": "50", "md_emailsnap_switch": "off"}
    wq = 'cmd="getmdattr";\r\nenable[1]="1";\r\ns[1]="40";\r\nresponse="200";\r\n'
    assert parse_reply(wq) == {"cmd": "getmdattr", "enable[1]": "1", "s[1]": "40", "response": "200"}


@pytest.mark.parametrize(
    ("api", "text", "code"),
    [
        ("hi3510", "[Succeed]set ok.\r\n[Error]Param error.\r\n", "invalid"),
        ("hi3510", "", "invalid"),
        ("wqhd", 'cmd="setmdattr";\r\nresponse="202";', "invalid"),
        ("wqhd", 'cmd="x";\r\nresponse="204";', "unsupported"),
        ("wqhd", 'cmd="x";\r\nresponse="211";', "refused"),
        ("wqhd", 'cmd="x";', "invalid"),
    ],
)
def test_failed_set_replies(api: str, text: str, code: str) -> None:
    with pytest.raises(CameraError) as err:
        check_set_reply(api, "cmd", text)
    assert err.value.code == code


def test_successful_set_replies() -> None:
    check_set_reply("hi3510", "setmdattr", "[Succeed]set ok.\r\n[Succeed]set ok.\r\n")
    check_set_reply("wqhd", "setalarmattr", 'cmd="setalarmattr";\r\nresponse="200";\r\n')
    check_set_reply("wqhd", "setalarmattr", 'cmd="setalarmattr";\r\nresponse="219";\r\n')  # unchanged


def test_query_keeps_repeated_keys_in_order_and_encodes_values() -> None:
    params = [("cmd", "setmdattr"), ("-name", "1"), ("cmd", "setmdattr"), ("-name", "2"), ("-ft_dirname", "./")]
    assert with_query("/param.cgi", params) == (
        "/param.cgi?cmd=setmdattr&-name=1&cmd=setmdattr&-name=2&-ft_dirname=.%2F"
    )
    assert with_query("/snap.cgi?chn=11", []) == "/snap.cgi?chn=11"
