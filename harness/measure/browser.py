"""The browser transport: a real headless Chromium, driven through Playwright, for sites a plain
HTTP client cannot read (the page computes a signature or token in JavaScript before it asks
its search API, as Douyin's does).

Opt-in per spec (``transport: browser``, options under ``browser:``). For each query the
browser opens a fresh context (no cookie, storage or cache from one probe reaches the next;
only the session's configured cookies are added), loads the page the request template
describes, and takes as the answer either

- the response of the first request whose URL matches ``browser.capture`` (a regular
  expression): the search API's JSON answer, which the spec's signals then classify; or
- without ``capture``, the rendered DOM once ``browser.wait_for`` (a CSS selector) is in the
  page (or when the load ends), classified as HTML.

Every redirect the page goes through (server redirects of the page and of the captured
request, and navigations its script starts) is reported in order, so the spec's ``location``
signals read them as for HTTP: a page sent to a CAPTCHA or login host is ``captcha`` or
``session_required``, not ``redirect_offsite``; waiting for the capture ends as soon as the
page leaves the spec's origin, or the captured request is redirected to another host.

What is kept is what the HTTP transport keeps (status, URL, a header subset, the body),
with every configured secret and every cookie value the page set scrubbed from the URL and
the body: cookies and tokens never reach the store. Pacing, retries, controls and storage
are the engine's, as for HTTP.

Chromium: Debian's ``chromium`` package (``/usr/lib/chromium/chromium``, the real binary,
not the ``/usr/bin`` shell wrapper), or ``$HARNESS_CHROMIUM``. The harness never downloads a
browser (never run ``playwright install``). One :class:`Browser` is one Chromium process;
Playwright runs in a thread of its own with its own event loop, so one browser serves every
run of a process (and every test of a test session) whatever loop calls it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..errors import HarnessError

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
# Debian and Ubuntu ship a shell wrapper in /usr/bin; Playwright needs the binary it runs.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser",
                       "/usr/lib64/chromium-browser/chromium-browser")
INSTALL_HINT = ("install Debian's Chromium (apt-get install chromium) and the browser extra "
                "(pip install -e '.[browser]' in a clone), or set HARNESS_CHROMIUM to a Chromium binary")


class BrowserUnavailable(HarnessError):
    """No usable Chromium or Playwright: says which specs need it and how to install it."""


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return True


def find_chromium() -> str | None:
    """The Chromium binary to drive: ``$HARNESS_CHROMIUM``, Debian's real binary, else one on PATH
    that is not a shell wrapper."""
    env = os.environ.get("HARNESS_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found and not _is_script(found):
            return found
    return None


def browser_problem() -> str | None:
    """Why the browser transport cannot run here (``None``: it can)."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed"
    if find_chromium() is None:
        return ("no Chromium found" + (f" at HARNESS_CHROMIUM={os.environ['HARNESS_CHROMIUM']}"
                                        if os.environ.get("HARNESS_CHROMIUM") else ""))
    return None


@dataclass
class BrowserAnswer:
    """What one page load produced. ``failure``/``signal`` are set when there is no answer to classify."""

    status: int | None = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    redirected_offsite: str | None = None  # the host the page ended on, when it left the spec's origin
    # every redirect of the page (and of the captured request) in order: (HTTP status, absolute
    # target); a navigation the page's script started is (None, target). The caller reads them
    # through the spec's ``location`` signals, as the HTTP transport reads a ``Location``.
    redirects: list[tuple[int | None, str]] = field(default_factory=list)
    page_cookies: list[str] = field(default_factory=list)  # values the page set: secrets to scrub
    failure: str | None = None
    signal: str | None = None


def _origin(url: str) -> tuple[str, str | None, int | None]:
    p = urlsplit(url)
    try:
        port = p.port or {"http": 80, "https": 443}.get(p.scheme)
    except ValueError:
        port = -1
    return p.scheme, p.hostname, port


class Browser:
    """One headless Chromium. ``Browser.launch()`` starts it (or raises :class:`BrowserUnavailable`);
    :meth:`load` may be awaited from any event loop; :meth:`close` ends the process."""

    def __init__(self, executable: str, proxy: str | None = None):
        self.executable = executable
        self.proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="harness-browser", daemon=True)
        self._pw: Any = None
        self._browser: Any = None
        self.loads = 0

    @classmethod
    def launch(cls, *, executable: str | None = None, proxy: str | None = None, needed_by: str = "") -> "Browser":
        problem = browser_problem() if executable is None else None
        who = f"{needed_by}: " if needed_by else ""
        if problem is not None:
            raise BrowserUnavailable(f"{who}needs a headless Chromium (transport: browser) but {problem}; {INSTALL_HINT}")
        exe = executable or find_chromium()
        assert exe is not None
        b = cls(exe, proxy)
        b._thread.start()
        try:
            b._call(b._start(), timeout=60)
        except Exception as exc:
            b.close()
            raise BrowserUnavailable(f"{who}Chromium at {exe} did not start: {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
        return b

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        # Playwright gives the browser a fresh, temporary user-data-dir of its own (and removes it)
        launch: dict[str, Any] = {"executable_path": self.executable, "headless": True, "args": list(CHROMIUM_FLAGS)}
        if self.proxy:
            parts = urlsplit(self.proxy)
            server = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            launch["proxy"] = {"server": server, **({"username": parts.username} if parts.username else {}),
                               **({"password": parts.password} if parts.password else {})}
        self._browser = await self._pw.chromium.launch(**launch)

    async def load(self, url: str, *, headers: dict[str, str] | None = None,
                   cookies: list[tuple[str, str]] | None = None, capture: str | None = None,
                   wait_for: str | None = None, timeout_s: float = 30.0, max_bytes: int = 5_000_000) -> BrowserAnswer:
        """Load ``url`` in a fresh context; the captured response or the rendered DOM (see the module doc)."""
        fut = asyncio.run_coroutine_threadsafe(
            self._load(url, dict(headers or {}), list(cookies or []), capture, wait_for, timeout_s, max_bytes),
            self._loop)
        return await asyncio.wrap_future(fut)

    async def _load(self, url: str, headers: dict[str, str], cookies: list[tuple[str, str]], capture: str | None,
                    wait_for: str | None, timeout_s: float, max_bytes: int) -> BrowserAnswer:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        self.loads += 1
        ua = next((v for k, v in headers.items() if k.lower() == "user-agent"), None)
        extra = {k: v for k, v in headers.items() if k.lower() not in ("user-agent", "cookie", "accept-encoding")}
        ctx = await self._browser.new_context(user_agent=ua, extra_http_headers=extra or None, locale="zh-CN",
                                              service_workers="block")
        deadline = asyncio.get_running_loop().time() + timeout_s

        def left_ms() -> float:
            return max(1.0, (deadline - asyncio.get_running_loop().time()) * 1000)

        try:
            if cookies:
                await ctx.add_cookies([{"name": n, "value": v, "url": url} for n, v in cookies])
            page = await ctx.new_page()
            loop = asyncio.get_running_loop()
            captured: asyncio.Future[Any] = loop.create_future()  # the API answer, or None: the page left
            pattern = re.compile(capture) if capture is not None else None
            redirects: list[tuple[int | None, str]] = []
            home = _origin(url)
            first_navigation = [True]

            def main_frame_navigation(req: Any) -> bool:
                try:
                    return bool(req.is_navigation_request()) and req.frame == page.main_frame
                except Exception:  # noqa: BLE001 - a service worker's request has no frame
                    return False

            def left(target: str) -> None:
                if _origin(target) != home and not captured.done():
                    captured.set_result(None)  # the page left the origin: its API call will not come

            def on_request(req: Any) -> None:
                if not main_frame_navigation(req):
                    return
                if first_navigation[0]:
                    first_navigation[0] = False
                elif req.redirected_from is None:  # a navigation the page's script (or a meta refresh) started
                    redirects.append((None, req.url))
                    left(req.url)

            def on_response(resp: Any) -> None:
                navigation = main_frame_navigation(resp.request)
                matched = pattern is not None and pattern.search(resp.url)
                if 300 <= resp.status < 400 and (navigation or matched):
                    target = urljoin(resp.url, resp.headers.get("location", ""))
                    redirects.append((resp.status, target))
                    if navigation:
                        left(target)
                    elif _origin(target) != _origin(resp.url) and not pattern.search(target) and not captured.done():
                        captured.set_result(None)  # the API call was sent to another host (a CAPTCHA or login page)
                elif matched and not captured.done():
                    captured.set_result(resp)

            page.on("request", on_request)
            page.on("response", on_response)

            def done(answer: BrowserAnswer) -> BrowserAnswer:
                answer.redirects = list(redirects)
                return answer

            answer = BrowserAnswer(url=url)

            def offsite() -> BrowserAnswer:
                # where the page went: the last navigation that left, else where it is now
                gone = next((u for _, u in reversed(redirects) if _origin(u) != home), page.url)
                answer.url = page.url
                answer.redirected_offsite = urlsplit(gone).hostname or ""
                answer.status = 302
                answer.headers = {"location": gone}
                answer.body = b""
                return answer

            try:
                nav = await page.goto(url, wait_until="domcontentloaded", timeout=left_ms())
            except PlaywrightTimeout:
                return done(BrowserAnswer(failure="timeout", signal="browser:page_load"))
            except PlaywrightError as exc:
                if captured.done() and captured.result() is None:  # its own script navigated away while it loaded
                    return done(offsite())
                return done(BrowserAnswer(failure=_net_failure(str(exc)), signal="browser:" + _first_word(str(exc))))
            answer.url = page.url

            if _origin(page.url) != home:
                return done(offsite())
            if nav is not None and not 200 <= nav.status < 300:
                answer.status, answer.headers = nav.status, await nav.all_headers()
                answer.body = (await nav.body())[: max_bytes + 1]
            elif capture is not None:
                try:
                    resp = await asyncio.wait_for(captured, left_ms() / 1000)
                except asyncio.TimeoutError:
                    return done(BrowserAnswer(url=page.url, failure="timeout", signal="browser:no_capture",
                                              page_cookies=await _cookie_values(ctx)))
                if resp is None:  # a script sent the page elsewhere before its API answered
                    answer.page_cookies = await _cookie_values(ctx)
                    return done(offsite())
                answer.url, answer.status, answer.headers = resp.url, resp.status, await resp.all_headers()
                try:
                    answer.body = await resp.body()
                except PlaywrightError:  # an aborted response has no body
                    answer.body = b""
            else:
                if wait_for is not None:
                    try:
                        await page.wait_for_selector(wait_for, state="attached", timeout=left_ms())
                    except PlaywrightTimeout:
                        pass  # the DOM as it is: the spec's markers decide (unexpected_page, not a verdict)
                    except PlaywrightError:
                        pass  # the page navigated while waiting: read where it ended
                if _origin(page.url) != home or captured.done():
                    answer.page_cookies = await _cookie_values(ctx)
                    return done(offsite())
                answer.status = nav.status if nav is not None else 200
                answer.headers = {"content-type": "text/html; charset=utf-8"}
                answer.body = (await page.content()).encode("utf-8")
            answer.page_cookies = await _cookie_values(ctx)
            return done(answer)
        finally:
            await ctx.close()

    def close(self) -> None:
        async def stop() -> None:
            if self._browser is not None:
                await self._browser.close()
            if self._pw is not None:
                await self._pw.stop()

        if self._thread.is_alive():
            try:
                self._call(stop(), timeout=30)
            except Exception:  # noqa: BLE001 - closing must not hide the run's own outcome
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _cookie_values(ctx: Any) -> list[str]:
    try:
        return [c["value"] for c in await ctx.cookies() if len(c.get("value") or "") >= 6]
    except Exception:  # noqa: BLE001 - a closed context has no cookies to scrub
        return []


def _first_word(text: str) -> str:
    mo = re.search(r"net::(ERR_[A-Z_]+)", text)
    return mo.group(1) if mo else "error"


def _net_failure(text: str) -> str:
    """A Chromium network error (``net::ERR_…``) as the failure code the HTTP transport would give."""
    err = _first_word(text)
    if "NAME_NOT_RESOLVED" in err:
        return "dns_error"
    if "CONNECTION_REFUSED" in err:
        return "connection_refused"
    if "CONNECTION_RESET" in err or "CONNECTION_CLOSED" in err or "EMPTY_RESPONSE" in err:
        return "connection_reset"
    if "TIMED_OUT" in err:
        return "timeout"
    if "CERT_COMMON_NAME_INVALID" in err:
        return "tls_invalid_hostname"
    if "CERT_AUTHORITY_INVALID" in err:
        return "tls_unknown_authority"
    if "CERT" in err:  # ERR_CERT_DATE_INVALID, ERR_CERT_REVOKED, ERR_CERT_INVALID ...
        return "tls_invalid_certificate"
    if "SSL" in err:
        return "tls_error"
    if "PROXY" in err or "TUNNEL" in err:
        return "proxy_error"
    return "network_error"
