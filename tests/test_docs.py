"""The docs keep up with the code: every setting is documented, and the README stays a front
door (at most 200 lines, the two commands first)."""

import re
from pathlib import Path

from app.config import Config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"

START = ("python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt "
         "&& python run.py")
TEST = ("python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements-dev.txt "
        "&& python -m pytest")


def settings():
    """The UPPER_CASE attributes of `Config`: every setting of the service."""
    return sorted(name for name in dir(Config) if re.fullmatch(r"[A-Z][A-Z0-9_]*", name))


def settings_table():
    """The setting names in the first column of the "Settings" table of the page."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.MULTILINE)


def fenced_blocks(text):
    """(language, body) of each fenced code block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def test_every_setting_is_documented():
    text = CONFIGURATION.read_text(encoding="utf-8")
    missing = [name for name in settings() if f"`{name}`" not in text]
    assert not missing, f"settings missing from docs/configuration.md: {', '.join(missing)}"


def test_the_settings_table_names_only_settings():
    documented = settings_table()
    assert documented, "docs/configuration.md has no Settings table"
    unknown = sorted(set(documented) - set(settings()))
    assert not unknown, ("docs/configuration.md documents settings that app.config.Config "
                         f"does not have: {', '.join(unknown)}")
    repeated = sorted({name for name in documented if documented.count(name) > 1})
    assert not repeated, f"documented twice in docs/configuration.md: {', '.join(repeated)}"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; at most 200"


def test_readme_starts_with_the_two_commands():
    blocks = fenced_blocks(README.read_text(encoding="utf-8"))
    assert [language for language, _ in blocks[:2]] == ["sh", "sh"], \
        "the first two code blocks of README.md must be the two sh commands"
    assert blocks[0][1].strip() == START
    assert blocks[1][1].strip() == TEST
