"""Hypothesis strategies shared by the tests: credential ops as the office signs them."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from edgegate.contract import messages as m


def plain_person(names: st.SearchStrategy[str]) -> Callable[[str], st.SearchStrategy[m.PersonMsg]]:
    """People named by ``names``, no attributes."""
    return lambda i: names.map(lambda n: m.PersonMsg(id=i, name=n))


def card_ops(
    people: st.SearchStrategy[str],
    cards: st.SearchStrategy[str],
    person: Callable[[str], st.SearchStrategy[m.PersonMsg]],
) -> st.SearchStrategy[m.Op]:
    """Every kind of op over the given person ids and card values; ``person`` draws the
    record of a put_person for an id (tests that look for a person's name afterwards need
    the name to follow the id)."""
    return st.one_of(
        people.flatmap(person).map(lambda p: m.PutPerson(op="put_person", person=p)),
        st.builds(lambda i: m.RemovePerson(op="remove_person", id=i), people),
        st.builds(
            lambda i, e: m.SetPersonEnabled(op="set_person_enabled", id=i, enabled=e),
            people,
            st.booleans(),
        ),
        st.builds(
            lambda v, p, e: m.PutCredential(
                op="put_credential",
                credential=m.CredentialMsg(kind="card", value=v, person=p, enabled=e),
            ),
            cards,
            people,
            st.booleans(),
        ),
        st.builds(
            lambda v, e: m.SetCredentialEnabled(
                op="set_credential_enabled", kind="card", value=v, enabled=e
            ),
            cards,
            st.booleans(),
        ),
        st.builds(
            lambda v: m.RemoveCredential(op="remove_credential", kind="card", value=v), cards
        ),
    )
