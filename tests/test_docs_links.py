"""The README and the pages it links to: every relative link reaches a file, and every
#anchor a heading of that file (as GitHub names them), so that nothing moved out of the
README is lost to its reader."""
import re

from tests.conftest import REPO

PAGES = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md')), REPO / 'deploy' / 'README.md',
         REPO / 'mytom' / 'templates' / 'README.md']
LINK = re.compile(r'\]\(([^)\s]+)\)')


def anchors(path):
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    found, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith('```'):
            fenced = not fenced
        elif not fenced and re.match(r'#{1,6} ', line):
            title = line.lstrip('#').strip().lower()
            found.add(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    return found


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r'^[a-z]+:', target):
                continue
            path, _, anchor = target.partition('#')
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f'{page.relative_to(REPO)}: {target} (no such file)')
            elif anchor and linked.suffix == '.md' and anchor not in anchors(linked):
                broken.append(f'{page.relative_to(REPO)}: {target} (no such heading)')
    assert broken == []


def test_the_readme_links_every_page_and_stays_short():
    readme = (REPO / 'README.md').read_text()
    linked = {(REPO / target.partition('#')[0]).resolve() for target in LINK.findall(readme)}
    assert set(PAGES[1:]) <= linked
    assert len(readme.splitlines()) < 400
