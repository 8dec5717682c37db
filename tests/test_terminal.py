"""F9: control characters a platform returns are neutralised in every terminal output.

Rich escapes markup, not control characters: a result domain holding ``\\x1b]0;PWNED\\x07``
(retitle the terminal) or ``\\x1b[31m`` used to reach the terminal raw through
``harness platforms check``. Every console of the CLI now neutralises them, and JSON output
escapes C1 controls and bidirectional overrides as well.
"""

from __future__ import annotations

import json

from harness.cli._common import json_text, neutralise
from harness.sandbox.server import SearchOutcome, render_page

from .test_hostile import invoke

EVIL = ["evil\x1b]0;PWNED\x07.com", "red\x1b[31m.com", "bidi\u202egnp.exe", "c1\x9b31m.org"]


def test_platforms_check_neutralises_what_a_platform_returns(sandbox):
    def hostile(handler, query: str) -> bool:
        page = render_page(query, SearchOutcome(kind="results", domains=EVIL, count=4))
        handler.send_body(200, page.encode("utf-8"), "text/html; charset=utf-8")
        return True

    sandbox.responder = hostile
    for args in ((), ("--json",)):
        res = invoke("platforms", "check", "sandbox", "--base-url", sandbox.url, *args)
        assert res.code in (0, 1), res.err
        for text in (res.out, res.err):
            for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
                assert raw not in text, (args, repr(text[-400:]))
    out = invoke("platforms", "check", "sandbox", "--base-url", sandbox.url, "--json").out
    assert "evil\\u001b]0;pwned\\u0007.com" in out  # in JSON the value survives (domains are lower-cased), escaped
    assert "evil\x1b]0;pwned\x07.com" in json.loads(out)["truism"]["result_domains"]


def test_neutralise_and_json_text():
    assert neutralise("a\x1b[31mb\tc\nd") == "a\\x1b[31mb\tc\nd"
    assert neutralise("x\u202ey") == "x\\u202ey" and neutralise("普通文本") == "普通文本"
    assert json.loads(json_text({"k": "\x9b\u202e\x1b"})) == {"k": "\x9b\u202e\x1b"}
    assert "\x9b" not in json_text({"k": "\x9b"}) and "\x1b" not in json_text({"k": "\x1b"})
