"""harness.toml + HARNESS_* variables: precedence, errors with file:line, masking, wiring into runs."""

import json
import os
from pathlib import Path

import pytest

from harness.operations.config import ConfigError, load_config, load_cookie_header, mask_url, masked

from .conftest import FIXTURES
from .test_schedule_support import cli_inprocess

MINI = FIXTURES / "probes" / "mini.yaml"


@pytest.fixture
def clean_env(monkeypatch):
    for k in list(os.environ):
        if k.startswith("HARNESS_"):
            monkeypatch.delenv(k)
    return monkeypatch


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path, clean_env):
    cfg_file = write(tmp_path / "harness.toml", 'store = "from-file.db"\nfailure_threshold = 0.2\n\n'
                     '[vantage]\nprobe_cc = "CN"\nprobe_asn = "AS4134"\nlabel = "file"\n')
    cfg = load_config(cfg_file)
    # a relative path in the file is relative to the file's folder (issue 14: the same store from any folder)
    assert (cfg.store, cfg.vantage.probe_cc, cfg.vantage.label, cfg.failure_threshold) == (
        str(tmp_path / "from-file.db"), "CN", "file", 0.2)
    assert cfg.source_file == cfg_file
    clean_env.setenv("HARNESS_VANTAGE__LABEL", "env")
    clean_env.setenv("HARNESS_STORE", "from-env.db")
    cfg = load_config(cfg_file)
    assert (str(cfg.store), cfg.vantage.label, cfg.vantage.probe_asn) == ("from-env.db", "env", "AS4134")
    cfg = load_config(cfg_file, store=Path("flag.db"), **{"vantage.label": "flag"})
    assert (str(cfg.store), cfg.vantage.label, cfg.vantage.probe_cc) == ("flag.db", "flag", "CN")
    assert load_config(None).vantage.probe_cc == "ZZ"  # no file in the working directory


def test_the_file_is_found_in_the_working_directory(tmp_path, clean_env):
    write(tmp_path / "harness.toml", '[vantage]\nlabel = "here"\n')
    clean_env.chdir(tmp_path)
    assert load_config().vantage.label == "here"


@pytest.mark.parametrize("text,needle,line", [
    ('store = "a.db"\n[vantage\nprobe_cc = "CN"\n', "invalid TOML", 2),
    ('store = "a.db"\n\n[vantage]\nprobe_cc = "China"\n', "vantage.probe_cc: probe_cc must be a two-letter", 4),
    ('failure_threshold = 3\n', "failure_threshold", 1),
    ('keep_evidence = "ninety"\n', "invalid duration", 1),
    ('stor = "typo.db"\n', "stor: unknown setting", 1),
    ('proxy = "ftp://x"\n', "proxy must be a URL", 1),
])
def test_bad_configuration_names_file_and_line(tmp_path, clean_env, text, needle, line):
    f = write(tmp_path / "harness.toml", text)
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert needle in str(exc.value)
    assert str(exc.value).startswith(f"{f}:{line}:")


def test_a_bad_environment_variable_is_named(clean_env):
    clean_env.setenv("HARNESS_FAILURE_THRESHOLD", "lots")
    with pytest.raises(ConfigError, match="environment: failure_threshold"):
        load_config(None)


def test_a_missing_explicit_file_is_an_error(tmp_path, clean_env):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")


def test_secrets_are_masked_and_cookie_files_never_shown(tmp_path, clean_env, capsys):
    cookies = write(tmp_path / "cookies.txt", "BDUSS=supersecretcookie\n")
    f = write(tmp_path / "harness.toml", f'proxy = "socks5://alice:hunter2@proxy.example:1080"\n'
                                        f'[cookie_files]\nbaidu = "{cookies}"\nweibo = "{tmp_path / "none.txt"}"\n')
    shown = masked(load_config(f))
    text = json.dumps(shown)
    assert "hunter2" not in text and "supersecretcookie" not in text
    assert shown["proxy"] == "socks5://alice:***@proxy.example:1080"
    assert "present" in shown["cookie_files"]["baidu"] and "MISSING" in shown["cookie_files"]["weibo"]
    res = cli_inprocess(capsys, "config", "show", "--config", str(f))
    assert res.returncode == 0, res.stderr
    assert "hunter2" not in res.stdout and "supersecretcookie" not in res.stdout and "alice:***@" in res.stdout


def test_mask_url():
    assert mask_url("http://proxy:3128") == "http://proxy:3128"
    assert mask_url("http://u:p@h:1/x?token=abc") == "http://u:***@h:1/x?***"


def test_cookie_files_netscape_and_header(tmp_path):
    netscape = write(tmp_path / "c.txt", "# Netscape HTTP Cookie File\n"
                     ".baidu.com\tTRUE\t/\tFALSE\t4102444800\tBDUSS\tabc\n"
                     "#HttpOnly_.baidu.com\tTRUE\t/\tTRUE\t0\tBAIDUID\tdef\n"
                     ".weibo.com\tTRUE\t/\tFALSE\t4102444800\tSUB\tnope\n"
                     ".baidu.com\tTRUE\t/\tFALSE\t1000\tEXPIRED\told\n")
    assert load_cookie_header(netscape, "https://www.baidu.com/s") == "BDUSS=abc; BAIDUID=def"
    header = write(tmp_path / "h.txt", "Cookie: a=1; b=2\n")
    assert load_cookie_header(header, "https://x.example/") == "a=1; b=2"
    bad = write(tmp_path / "bad.txt", "# Netscape HTTP Cookie File\n.a.com\tTRUE\n")
    with pytest.raises(ConfigError, match="bad.txt:2"):
        load_cookie_header(bad, "https://a.com/")


def test_run_uses_the_configuration_and_keeps_secrets_out_of_store_and_logs(sandbox, tmp_path, clean_env, capsys):
    seen_cookies = []

    def capture(handler, query):
        seen_cookies.append(handler.headers.get("Cookie"))
        return False

    sandbox.responder = capture
    cookies = write(tmp_path / "cookies.txt", "Cookie: SESSIONID=topsecretvalue42\n")
    db = tmp_path / "store" / "h.db"
    f = write(tmp_path / "harness.toml",
              f'store = "{db}"\n[vantage]\nprobe_cc = "CN"\nprobe_asn = "AS4134"\nlabel = "bj-1"\n'
              f'[cookie_files]\nsandbox = "{cookies}"\n[base_urls]\nsandbox = "{sandbox.url}"\n')
    clean_env.chdir(tmp_path)
    res = cli_inprocess(capsys, "run", str(MINI), "--config", str(f), "--json", "--vantage", "flag-label")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "complete"
    assert seen_cookies and set(seen_cookies) == {"SESSIONID=topsecretvalue42"}
    from harness.store.sqlite import Store

    with Store(db, readonly=True) as st:
        [run] = st.list_runs()
        assert (run.probe_cc, run.probe_asn, run.vantage) == ("CN", "AS4134", "flag-label")
    log = db.parent / "logs" / "harness.jsonl"
    assert log.exists()
    for blob in (db.read_bytes(), Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b"", log.read_bytes()):
        assert b"topsecretvalue42" not in blob


def test_too_many_failures_exit_3_with_one_line(sandbox, tmp_path, capsys):
    def down(handler, query):  # the control works, every probe is refused (not retryable: the test stays fast)
        if query == "的":
            return False
        handler.send_body(403, b"forbidden", "text/plain")
        return True

    sandbox.responder = down
    args = ["run", str(MINI), "--store", str(tmp_path / "s.db"), "--base-url", f"sandbox={sandbox.url}", "--quiet"]
    res = cli_inprocess(capsys, *args)
    assert res.returncode == 3, res.stderr
    assert res.stdout.count("\n") == 1 and "failure=12" in res.stdout
    assert "100% of probes failed (threshold 50%)" in " ".join(res.stderr.split()) and "Traceback" not in res.stderr
    res = cli_inprocess(capsys, *args, "--new", "--failure-threshold", "1")
    assert res.returncode == 0, res.stderr


def test_config_rate_limits_apply_only_where_the_probe_set_sets_none(tmp_path, clean_env):
    from harness.cli.run import request_from_config
    from harness.models import RateLimit
    from harness.operations.runs import prepare

    f = write(tmp_path / "harness.toml", '[rate_limit]\ninterval_s = 42\n\n[rate_limits.toutiao]\ninterval_s = 77\n')
    cfg = load_config(f, proxy="http://u:pw@127.0.0.1:3128")
    ps = write(tmp_path / "ps.yaml", f"name: x\nkeywords:\n  - list: {FIXTURES / 'keywords' / 'mini.yaml'}\n"
                                     "platforms:\n  - name: baidu\n  - name: toutiao\n  - name: sandbox\n"
                                     "    rate_limit: {interval_s: 1}\n"
                                     f"controls: {{lists: [{FIXTURES / 'keywords' / 'controls.yaml'}]}}\n")
    req = request_from_config(ps, cfg)
    assert req.options.proxy == "http://u:pw@127.0.0.1:3128"
    plan = prepare(req)
    assert plan.rate_limits["baidu"].interval_s == 42
    assert plan.rate_limits["toutiao"].interval_s == 77
    assert plan.rate_limits["sandbox"] == RateLimit(interval_s=1)  # the probe set's own pace wins
    top = write(tmp_path / "top.yaml", ps.read_text().replace("platforms:", "rate_limit: {interval_s: 5}\nplatforms:"))
    plan = prepare(request_from_config(top, cfg))
    assert plan.rate_limits["baidu"].interval_s == 5


def test_logs_mask_secrets_whatever_the_caller_passes(tmp_path):
    from harness.operations.logs import event, get_logger, setup_logging

    log = tmp_path / "h.jsonl"
    setup_logging(log)
    try:
        event(get_logger("t"), "oops", "proxy socks5://bob:s3cret@h:1 failed; Cookie: SID=abc123",
              url="http://u:pw2@x/y", headers={"Cookie": "k=v9"}, note="token=tok456")
    finally:
        setup_logging(None)
    text = log.read_text()
    for secret in ("s3cret", "abc123", "pw2", "v9", "tok456"):
        assert secret not in text
    line = json.loads(text)
    assert line["event"] == "oops" and "bob:***@" in line["msg"]
