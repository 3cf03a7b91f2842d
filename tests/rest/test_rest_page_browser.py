"""The status page (`GET /`) rendered by headless Chromium against a real node.

Chromium is Debian's `chromium` package: installed with apt-get when missing (as root), else
the test is skipped saying why. The screenshot goes to `test-output/rest/` (gitignored).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(900)

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "rest"
BROWSER_TIMEOUT = 120


@pytest.fixture(scope="session")
def chromium():
    """The path of a Chromium binary, installing Debian's package if needed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and apt-get is not available to install it")
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and installing it with apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, env=env, timeout=900)
    if install.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600)
        install = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, env=env, timeout=900)
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"apt-get could not install chromium: {install.stderr.decode(errors='replace')[-500:]}")
    return found


def browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *args],
        capture_output=True, timeout=BROWSER_TIMEOUT)


def test_status_page_renders_in_a_browser(chromium, node, http, upload, tmp_path):
    cids = [upload(os.urandom(300_000), filename="holiday-photo.jpg", mimetype="image/jpeg"),
            upload(b"notes " * 1000, filename="notes.txt", mimetype="text/plain")]
    started = http.post(f"/data/{cids[0]}/network").json()
    url = node.url + "/"

    dom = browse(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    html = dom.stdout.decode()
    peer_id = http.get("/peerid").json()["id"]
    assert peer_id in html
    for cid in cids:
        assert f'href="/api/storage/v1/data/{cid}"' in html
    assert "holiday-photo.jpg" in html and "notes.txt" in html
    fetches = re.search(r'<section id="fetches".*?</section>', html, re.DOTALL).group(0)
    assert f">{started['downloadId']}<" in fetches and "done" in fetches

    # a dataset link downloads the dataset
    link = re.search(r'href="(/api/storage/v1/data/[^"]+)"', html).group(1)
    assert httpx.get(node.url + link, timeout=30).status_code == 200

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "status-page.png"
    shot.unlink(missing_ok=True)
    result = browse(chromium, tmp_path / "profile-shot", "--window-size=1280,1100", f"--screenshot={shot}", url)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank image
