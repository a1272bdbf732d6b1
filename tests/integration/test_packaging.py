"""A non-editable install carries mappings/ and the demo config; the Dockerfile passes hadolint."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_install_validates_the_bundled_demo_config(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("evbridge-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # The fresh venv sees this environment's dependencies through a plain path entry (no network
    # needed); .pth files there are not processed, so our editable checkout stays out of reach.
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True
    ).stdout.strip()
    Path(site, "deps-from-test-env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    # run from a directory with no source tree in reach, so only the installed package counts
    code = "from bridge.config import demo_config_path; print(demo_config_path())"
    demo = subprocess.run(
        [str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.strip()
    assert "site-packages" in demo and demo.endswith("bridge/_data/config/demo.yaml")
    mappings = Path(demo).parents[1] / "mappings"
    assert (mappings / "README.md").is_file()
    proc = subprocess.run(
        [str(venv / "bin" / "evbridge"), "validate", demo], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK:")


def test_dockerfile_passes_hadolint() -> None:
    scripts = Path(sysconfig.get_path("scripts"))
    hadolint = shutil.which("hadolint", path=str(scripts)) or shutil.which("hadolint")
    assert hadolint, "hadolint not found: install the test extra (pip install -e '.[test]')"
    proc = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text and 'VOLUME ["/var/lib/evbridge"]' in text and 'CMD ["evbridge", "run"]' in text
    assert text.count("FROM ") >= 2  # multi-stage
