"""JupyterLab in the learner's language: `make lab LANG=es` opens the Spanish welcome lab with
JupyterLab's own interface in Spanish (the language pack jupyterlab-language-pack-es-ES).

JupyterLab itself is the oracle: its settings API says which locale the interface loads, and its
translations API serves that locale's strings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from helpers.runtime import i18n
from helpers.tools import jupyter

ROOT = Path(__file__).resolve().parents[1]


def test_the_spanish_setting_selects_the_es_es_language_pack(tmp_path):
    config = jupyter.write_language_config("es", tmp_path / "es")
    overrides = json.loads((config / "labconfig" / "default_setting_overrides.json").read_text())
    assert overrides == {"@jupyterlab/translation-extension:plugin": {"locale": "es_ES"}}
    assert jupyter.write_language_config("en", tmp_path / "en") is None  # English: JupyterLab's own
    env = jupyter.language_env("es", jupyter.lab_env({"PATH": os.defpath}), where=tmp_path / "es")
    assert env[i18n.ENV] == "es"
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[:2] == [str(tmp_path / "es"), str(jupyter.CONFIG_DIR)]
    # What jupyterlab_server itself reads as the defaults of the settings, with that configuration path:
    # the Spanish locale, and the course's own overrides kept.
    code = ("import json; from jupyterlab_server.settings_utils import _get_overrides; "
            f"print(json.dumps(_get_overrides({str(tmp_path / 'app')!r})[0]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         env={**os.environ, **env, "JUPYTER_CONFIG_DIR": str(tmp_path / "user")})
    read = json.loads(out.stdout)
    assert read["@jupyterlab/translation-extension:plugin"] == {"locale": "es_ES"}
    assert read["@jupyterlab/apputils-extension:notification"]["checkForUpdates"] is False


def test_the_spanish_edition_opens_its_own_welcome_lab():
    assert jupyter.welcome("en") == "labs/00_welcome.ipynb"
    spanish = ROOT / "labs" / "es" / "00_welcome.ipynb"
    assert jupyter.welcome("es") == ("labs/es/00_welcome.ipynb" if spanish.is_file() else "labs/00_welcome.ipynb")


def test_make_lab_passes_lang_to_the_launcher():
    out = subprocess.run(["make", "-n", "lab", "LANG=es", "-o", "setup"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert "ELASTICACHE_LAB_LANG=es " in out.stdout and "scripts/lab.py" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(["make", "-n", "lab", "-o", "setup"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "LANG": "C.UTF-8", "ELASTICACHE_LAB_LANG": ""})
    assert "ELASTICACHE_LAB_LANG= " in out.stdout, out.stdout + out.stderr  # the locale decides


@pytest.mark.topology  # starts a JupyterLab server (about 20 s), as the browser tests do
def test_jupyterlab_started_for_spanish_loads_its_interface_in_spanish(tmp_path):
    (tmp_path / "labs").mkdir()
    env = {"JUPYTERLAB_SETTINGS_DIR": str(tmp_path / ".settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / ".workspaces")}
    env.update(jupyter.language_env("es", {**os.environ, **jupyter.lab_env()}, where=tmp_path / ".config-es"))
    with jupyter.lab_server(tmp_path, notebook=None, env=env) as server:
        def get(path: str) -> dict:
            req = urllib.request.Request(f"{server.base_url}/{path}", headers={"Authorization": f"token {server.token}"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.load(resp)

        setting = get("lab/api/settings/@jupyterlab/translation-extension:plugin")
        strings = get("lab/api/translations/es_ES")
    # The setting's default (the learner has chosen nothing in Settings > Language) is the Spanish pack's locale.
    assert setting["schema"]["properties"]["locale"]["default"] == "es_ES" and "locale" not in setting["settings"]
    catalogue = strings["data"]["jupyterlab"]  # the language pack's strings: English -> [Spanish]
    assert catalogue["Settings"] == ["Configuración"] and catalogue["Help"] == ["Ayuda"], strings.get("message")
