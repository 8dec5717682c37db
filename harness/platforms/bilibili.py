"""Bilibili's search API: the wbi request signature and a session primed the way a browser primes it.

The built-in adapter ``bilibili_wbi`` (spec ``bilibili``). Protocol facts and their sources:
``tests/fixtures/platforms/bilibili/SOURCES.md``; in short:

- **Session.** Since 2022-08 the search API answers ``-412 请求被拦截`` (or an HTTP 412 page)
  without a ``buvid3`` cookie. A browser gets it from the site before searching; here the
  session asks ``/x/frontend/finger/spi`` (``data.b_3`` / ``data.b_4`` become the cookies
  ``buvid3`` / ``buvid4``) and sets ``b_nut`` (the time the cookie was minted), as a page
  load does. These cookies are secrets of the session: sent, scrubbed, never stored.
- **Keys.** ``/x/web-interface/nav`` answers, logged out too, ``data.wbi_img.img_url`` and
  ``sub_url``; each key is the file name without its extension. Keys rotate (about daily),
  so the session re-primes after :attr:`BilibiliWbi.prime_ttl_s`.
- **Signature** (:func:`sign_params`): the mixin key is ``img_key + sub_key`` permuted by
  :data:`MIXIN_KEY_ENC_TAB`, first 32 characters; ``wts`` (Unix seconds) is added, the
  parameters sorted by name, ``!'()*`` removed from every value, each value percent-encoded
  as JavaScript's ``encodeURIComponent`` does (space ``%20``), and
  ``w_rid = md5(query + mixin_key)``.
- **Risk control** (:meth:`BilibiliWbi.classify`): HTTP 412 (JSON ``-412`` or the HTML page
  由于触发哔哩哔哩安全风控策略) is the platform refusing this session or address, not a rate
  limit: ``failure: session_invalid``, not retried; the session re-primes (new ``buvid3``,
  new keys) before its next request. ``-352``/``v_voucher`` answers are spec signals.

Everything here but :meth:`BilibiliWbi.prime` is pure.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from ..failures import FailureCode
from .adapters import BuiltRequest, PrimingContext, PrimingError
from .classification import Classification, failure
from .spec import PlatformSpec

MIXIN_KEY_ENC_TAB = (
    46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35, 27, 43, 5, 49, 33, 9, 42, 19, 29, 28, 14, 39, 12, 38,
    41, 13, 37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60, 51, 30, 4, 22, 25, 54, 21, 56, 59, 6, 63, 57, 62, 11, 36,
    20, 34, 44, 52,
)
_FILTERED = str.maketrans("", "", "!'()*")

RISK_PAGE_TEXT = "由于触发哔哩哔哩安全风控策略"


def key_from_url(url: str) -> str:
    """``https://i0.hdslb.com/bfs/wbi/7cd0….png`` -> ``7cd0…`` (the file name without extension)."""
    return url.rsplit("/", 1)[-1].split(".", 1)[0]


def mixin_key(img_key: str, sub_key: str) -> str:
    raw = img_key + sub_key
    if len(raw) != 64:
        raise ValueError(f"wbi keys must be 32 + 32 characters, got {len(img_key)} + {len(sub_key)}")
    return "".join(raw[i] for i in MIXIN_KEY_ENC_TAB)[:32]


def encode_value(value: Any) -> str:
    """A parameter value as the signature encodes it: ``!'()*`` removed, encodeURIComponent-style."""
    return quote(str(value).translate(_FILTERED), safe="-_.~")


def signed_query(params: Mapping[str, Any], wts: int) -> str:
    """The string whose MD5 (with the mixin key appended) is ``w_rid``: sorted, filtered, encoded."""
    items = {**{k: v for k, v in params.items() if k not in ("w_rid", "wts")}, "wts": wts}
    return "&".join(f"{quote(k, safe='-_.~')}={encode_value(items[k])}" for k in sorted(items))


def sign_params(params: Mapping[str, Any], img_key: str, sub_key: str, wts: int | None = None) -> dict[str, str]:
    """``params`` plus ``wts`` and ``w_rid``."""
    ts = int(time.time()) if wts is None else int(wts)
    query = signed_query(params, ts)
    w_rid = hashlib.md5((query + mixin_key(img_key, sub_key)).encode("utf-8")).hexdigest()  # noqa: S324 - the protocol's hash
    return {**{k: str(v) for k, v in params.items() if k not in ("w_rid", "wts")}, "wts": str(ts), "w_rid": w_rid}


def sign_url(url: str, img_key: str, sub_key: str, wts: int | None = None) -> str:
    """The URL as built, its parameters unchanged, with ``wts`` and ``w_rid`` appended."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    signed = sign_params(params, img_key, sub_key, wts)
    kept = "&".join(p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in ("wts", "w_rid"))
    query = (kept + "&" if kept else "") + f"wts={signed['wts']}&w_rid={signed['w_rid']}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _fill(template: str, spec: PlatformSpec) -> str:
    return template.replace("{base_url}", spec.base_url)


class BilibiliWbi:
    """The ``bilibili_wbi`` adapter: primes a session (buvid3, wbi keys), signs, reads risk control.

    ``adapter_options`` of the spec: ``spi_url`` and ``nav_url`` (``{base_url}`` is filled in).
    """

    prime_ttl_s = 6 * 3600.0  # wbi keys rotate about daily; buvid3 is long-lived

    async def prime(self, spec: PlatformSpec, ctx: PrimingContext) -> None:
        opts = spec.adapter_options
        spi = await ctx.get(_fill(opts.get("spi_url", "{base_url}/x/frontend/finger/spi"), spec))
        if spi.status != 200:
            raise PrimingError(f"finger_spi:status:{spi.status}")
        try:
            data = spi.json()["data"]
            buvid3, buvid4 = str(data["b_3"]), str(data.get("b_4") or "")
        except (ValueError, KeyError, TypeError):
            raise PrimingError("finger_spi:no_buvid") from None
        if not buvid3:
            raise PrimingError("finger_spi:no_buvid")
        ctx.set_cookie("buvid3", buvid3)
        if buvid4:
            ctx.set_cookie("buvid4", buvid4)
        ctx.set_cookie("b_nut", str(int(time.time())), secret=False)
        nav = await ctx.get(_fill(opts.get("nav_url", "{base_url}/x/web-interface/nav"), spec))
        if nav.status != 200:
            raise PrimingError(f"nav:status:{nav.status}")
        try:
            img = nav.json()["data"]["wbi_img"]
            img_key, sub_key = key_from_url(img["img_url"]), key_from_url(img["sub_url"])
            mixin_key(img_key, sub_key)
        except (ValueError, KeyError, TypeError):
            raise PrimingError("nav:no_wbi_keys") from None
        ctx.state.update(img_key=img_key, sub_key=sub_key)

    def build_request(self, spec: PlatformSpec, query: str, request: BuiltRequest,
                      state: dict[str, Any] | None = None) -> BuiltRequest:
        if not state or "img_key" not in state:
            raise PrimingError("not_primed")
        request.url = sign_url(request.url, state["img_key"], state["sub_key"])
        return request

    def classify(self, spec: PlatformSpec, status: int, headers: dict[str, str], body: bytes) -> Classification | None:
        if status != 412:
            return None
        text = body[:4096].decode("utf-8", "replace")
        if RISK_PAGE_TEXT in text:
            return failure(FailureCode.session_invalid, "status:412", "risk_control_page")
        try:
            code = json.loads(text).get("code")
        except (ValueError, AttributeError):
            code = None
        if code == -412:
            return failure(FailureCode.session_invalid, "status:412", "request_intercepted")
        return failure(FailureCode.session_invalid, "status:412")
