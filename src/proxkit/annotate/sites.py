"""Which web site a saved page belongs to, when its collection does not say: pages of one site must stay on
one side of a split, so a page's site is its registered domain (`cache.nymag.com` and `nymag.com` are one
site), read from the page's own canonical URL, else from the host most of its links point to."""

from __future__ import annotations

import re
from collections import Counter

_ARCHIVED = re.compile(r"\Ahttps?://[^/]*archive\.org/web/[0-9a-z_*]+/", re.IGNORECASE)
_CANONICAL = re.compile(
    r"""<link\b[^>]*\brel=["']?canonical["']?[^>]*\bhref=["']([^"']+)"""
    r"""|<link\b[^>]*\bhref=["']([^"']+)["'][^>]*\brel=["']?canonical"""
    r"""|<meta\b[^>]*\bproperty=["']og:url["'][^>]*\bcontent=["']([^"']+)"""
    r"""|<meta\b[^>]*\bcontent=["']([^"']+)["'][^>]*\bproperty=["']og:url""",
    re.IGNORECASE,
)
_HREF = re.compile(r"""\bhref=["']?(https?://[^"'\s>]+)""", re.IGNORECASE)
_HOST = re.compile(r"\Ahttps?://([^/:?#]+)", re.IGNORECASE)
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or"}  # example.co.uk is one site
NOT_SITES = {  # hosts links point to from every kind of site
    "archive.org",
    "facebook.com",
    "twitter.com",
    "x.com",
    "google.com",
    "youtube.com",
    "instagram.com",
    "linkedin.com",
    "pinterest.com",
    "w3.org",
    "ogp.me",
    "apple.com",
    "wordpress.org",
    "addthis.com",
    "doubleclick.net",
}


def registered_domain(host: str) -> str:
    """`www.news.bbc.co.uk` → `bbc.co.uk`, `cache.nymag.com` → `nymag.com` (an approximation of the
    public-suffix rule that holds for the suffixes of these collections)."""
    labels = host.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def url_site(url: str) -> str | None:
    """The registered domain of a URL (an archive.org capture is read as the URL it captured)."""
    match = _HOST.match(_ARCHIVED.sub("", url.strip()))
    return registered_domain(match.group(1)) if match else None


def page_site(html: str, fallback: str) -> str:
    """The site of a saved page: its canonical (or og:url) URL's domain, else the domain most of its absolute
    links point to (social networks, archive.org and the like left out), else `fallback`."""
    for match in _CANONICAL.finditer(html):
        site = url_site(next(group for group in match.groups() if group))
        if site and site not in NOT_SITES:
            return site
    hosts = Counter(site for url in _HREF.findall(html) if (site := url_site(url)) and site not in NOT_SITES)
    return hosts.most_common(1)[0][0] if hosts else fallback
