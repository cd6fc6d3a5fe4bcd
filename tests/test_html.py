"""The HTML report: self-contained, escaped, and rendered in a real headless Chromium (CI
installs Debian's chromium): the page loads with no console message at all, every formula
is typeset by the embedded KaTeX, and nothing is fetched from the network."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

import derive
from derive import cli
from derive.check.document import build
from derive.render import formats
from derive.render.html import fragment, page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
#: no network at all: any request the page made would fail, and say so on the console
NO_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND"


def need_chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed")
    return CHROMIUM


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    exe = need_chromium()
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", "--enable-logging=stderr", "--v=0", NO_NETWORK, *args],
                          capture_output=True, text=True, timeout=120)


def load_in_browser(html_file: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and every console message it printed."""
    r = chromium("--virtual-time-budget=10000", "--dump-dom", html_file.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    return r.stdout, console


@pytest.fixture(scope="module")
def classifier_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(page(build(d, d.report(), sections=True, notation="course")))
    return path


def test_the_page_is_self_contained(classifier_page: Path) -> None:
    text = classifier_page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "url(fonts/" not in text and "url(data:font/woff2;base64," in text
    assert text.count("@font-face") == 11
    size = len(text.encode())
    assert size < 900_000, size  # KaTeX and its fonts are about 500 kB of it


def test_refuted_claims_come_first_with_their_counterexample(classifier_page: Path) -> None:
    text = classifier_page.read_text()
    failures = text.index('class="failures"')
    assert failures < text.index("<details")
    block = text[failures:text.index("</section>", failures)]
    assert "refuted" in block and '<table class="values">' in block and "Diagnosis" in block


def test_sections_are_collapsible(classifier_page: Path) -> None:
    text = classifier_page.read_text()
    for title in ("Network and conventions", "Forward pass", "Backward pass, layer 2", "Backward pass, layer 1",
                  "Your claims"):
        assert re.search(rf"<details( open)?><summary>\d+\. {re.escape(title)}</summary>", text), title


def test_untrusted_text_is_escaped(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "derivations" / "two_two_one_sigmoid.yaml").read_text())
    data["name"] = "<script>alert(1)</script> & \\input{/etc/passwd}"
    d = derive.from_dict(data, name="<img src=x onerror=alert(2)>.yaml")
    text = page(build(d, d.report(rules=False), sections=True))
    body = text[text.index("<body>"):text.index("<script>")]
    assert "<script>alert" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img" not in body
    assert fragment(build(d, d.report(rules=False))).count("<script") == 0


def test_in_chromium_every_formula_is_typeset_and_the_console_is_silent(classifier_page: Path) -> None:
    dom, console = load_in_browser(classifier_page)
    assert console == []  # no error, no warning, no failed request
    assert 'data-typeset="done"' in dom
    spans = dom.count('class="math')
    assert spans > 100 and dom.count('class="katex"') == spans  # every formula typeset
    body = dom[dom.index("<body"):dom.index("<script")]  # the page as shown, without the scripts
    assert "math-error" not in body
    text = re.sub(r"<annotation[^>]*>.*?</annotation>", "", body, flags=re.S)  # KaTeX keeps the source there
    text = re.sub(r"<[^>]+>", " ", text)
    for raw in ("\\frac", "\\partial", "\\(", "\\sum", "\\odot"):
        assert raw not in text, raw  # no TeX left unrendered


def test_a_broken_formula_would_be_seen(tmp_path: Path, classifier_page: Path) -> None:
    """The browser test can fail: a formula KaTeX rejects is reported on the console."""
    broken = tmp_path / "broken.html"
    broken.write_text(classifier_page.read_text().replace(r"\frac{\partial J}", r"\frac{\partial J}^^}", 1))
    dom, console = load_in_browser(broken)
    assert 'data-typeset="failed"' in dom and any("could not typeset" in line for line in console)


@pytest.mark.parametrize("stem", ["tanh_scalar_equations", "three_layer_softmax"])
def test_cli_report_and_check_html(stem: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "derive.cli", "report", f"derivations/{stem}.yaml", "-o", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    out2 = tmp_path / "c.html"
    assert cli.main(["check", str(ROOT / "derivations" / f"{stem}.yaml"), "--html", str(out2), "--no-rules"]) == 0
    assert "Your claims" in out2.read_text()
    if CHROMIUM is not None:
        dom, console = load_in_browser(out)
        assert console == [] and 'data-typeset="done"' in dom


def test_html_is_a_registered_format() -> None:
    assert "html" in formats.names() and formats.get("html").extension == ".html"


def test_screenshot_in_docs_is_current_enough() -> None:
    """docs/report-page.png is what the README shows next to the PDF page."""
    shot = ROOT / "docs" / "report-page.png"
    assert shot.exists() and shot.stat().st_size > 20_000
    readme = (ROOT / "README.md").read_text()
    assert "docs/report-page.png" in readme and "docs/proof-page.png" in readme


def test_screenshot_can_be_taken(classifier_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    r = chromium("--hide-scrollbars", "--window-size=1000,1400", f"--screenshot={shot}", classifier_page.as_uri())
    assert r.returncode == 0 and shot.stat().st_size > 20_000
