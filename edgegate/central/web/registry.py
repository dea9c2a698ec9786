"""The console's pages: each feature module registers its pages here with the roles that see
them; the menu of the base template is built from this list (only what the role may open)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str
    roles: tuple[str, ...]
    order: int = 50


PAGES: list[Page] = []


def register_page(page: Page) -> Page:
    if all(p.path != page.path for p in PAGES):
        PAGES.append(page)
        PAGES.sort(key=lambda p: (p.order, p.title))
    return page


def menu(role: str) -> list[Page]:
    return [p for p in PAGES if role in p.roles]
