"""`make dist` builds what would be published; the wheel installs into a clean venv and runs.

The README leads with installing from a checkout; this proves the wheel the PyPI forms would install
carries everything `databar-mcp --version` and `databar-mcp doctor --sandbox` need.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from databar_mcp import __version__

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603 - our own build and venv commands
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done


def test_the_built_wheel_installs_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (wheel,) = out.glob("databar_mcp-*.whl")
    (sdist,) = out.glob("databar_mcp-*.tar.gz")
    assert wheel.name == f"databar_mcp-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "databar_mcp/py.typed" in names and "databar_mcp/sandbox/app.py" in names
    assert "databar_mcp/app/demo_leads.csv" in names  # the demo's bundled input
    licence = f"databar_mcp-{__version__}.dist-info/licenses/LICENSE"
    assert licence in names and "MIT License" in zipfile.ZipFile(wheel).read(licence).decode()
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert f"databar_mcp-{__version__}/README.md" in members
    assert f"databar_mcp-{__version__}/LICENSE" in members
    assert f"databar_mcp-{__version__}/databar_mcp/app/cli.py" in members

    # A clean venv, filled by this interpreter's pip (`--python`): the wheel and what it declares, nothing else.
    # Seeding the venv with its own pip and byte-compiling every dependency took two thirds of this test's CPU.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-compile", wheel)
    version = run(venv / "bin" / "databar-mcp", "--version")
    assert __version__ in version.stdout
    env_home = tmp_path / "home"
    doctor = subprocess.run(  # noqa: S603 - the venv we just made
        [str(venv / "bin" / "databar-mcp"), "doctor", "--sandbox"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"HOME": str(env_home), "PATH": "/usr/bin:/bin", "DATABAR_MCP_STATE_DIR": str(tmp_path / "state")},
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "balance" in doctor.stdout.lower()
    demo = subprocess.run(  # noqa: S603 - the venv we just made: the demo ships inside the wheel
        [str(venv / "bin" / "databar-mcp"), "demo", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"HOME": str(env_home), "PATH": "/usr/bin:/bin", "DATABAR_MCP_STATE_DIR": str(tmp_path / "state")},
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "rows enriched" in demo.stdout and (tmp_path / "leads_enriched.csv").exists()
