"""Every link and image in README.md and docs/*.md that points inside the repository points at a file
or folder that exists (web addresses and links within a page are not checked)."""

import re

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)  # code blocks: their text is not a link
CODE = re.compile(r"`[^`\n]*`")  # inline code
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)  # [name]: target
HTML = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, ...


def targets(text):
    """The link and image targets of a Markdown text, outside code."""
    text = CODE.sub("", FENCE.sub("", text))
    return [m.group(1) for pattern in (LINK, REFERENCE, HTML) for m in pattern.finditer(text)]


def local_path(page, target):
    """The file a target names, relative to its page; None for a web address or a link within the page."""
    if SCHEME.match(target) or target.startswith(("#", "//")):
        return None
    path = target.split("#", 1)[0].split("?", 1)[0]
    return (page.parent / path).resolve() if path else None


def test_the_pages_exist():
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 1, "docs/*.md: no pages"


def test_targets_are_found():
    text = 'See [a](docs/a.md#x), ![b](docs/b.png "t"), [c](https://example.com), [d](#here), `[e](no.md)`\n'
    text += '```\n[f](no.md)\n```\n<img src="docs/g.gif" width=300>\n[h]: docs/h.md\n'
    found = targets(text)
    assert found == ["docs/a.md#x", "docs/b.png", "https://example.com", "#here", "docs/h.md", "docs/g.gif"]
    page = ROOT / "README.md"
    assert [local_path(page, t) for t in found[2:4]] == [None, None]
    assert local_path(page, "docs/a.md#x") == ROOT / "docs" / "a.md"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_and_images_exist(page):
    missing = []
    for target in targets(page.read_text(encoding="utf-8")):
        path = local_path(page, target)
        if path is not None and not path.exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to what is not in the repository: {missing}"
