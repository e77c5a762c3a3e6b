"""The vocabularies (adminapp/vocabularies.py): each member has its label in every language, and
the code names the members, never their values spelled out again."""

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask_babel import force_locale

from adminapp import labels
from adminapp.vocabularies import AuditAction, Language, MovementKind, Role, TransactionStatus

from .test_i18n import LANGUAGES as TRANSLATED_LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "adminapp" / "translations"

# vocabulary: (its label table, the msgctxt of its labels)
LABELLED = {
    TransactionStatus: (labels.STATUS_LABELS, "transaction status"),
    Role: (labels.ROLE_LABELS, "role"),
    AuditAction: (labels.ACTION_LABELS, "audit action"),
    MovementKind: (labels.MOVEMENT_KIND_LABELS, "stock movement"),
}


def translated(language: str) -> set[tuple]:
    """(context, msgid) of the translated entries of a language's messages.po."""
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale=language)
    return {(message.context, message.id) for message in catalog if message.id and message.string and not message.fuzzy}


@pytest.mark.parametrize("vocabulary", LABELLED, ids=lambda v: v.__name__)
def test_every_member_has_one_label(vocabulary):
    table, _ = LABELLED[vocabulary]
    assert list(table) == list(vocabulary)  # all of them, in the vocabulary's order (filters, choices)


@pytest.mark.parametrize("vocabulary", LABELLED, ids=lambda v: v.__name__)
@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_every_label_is_translated(app, vocabulary, language):
    table, context = LABELLED[vocabulary]
    with app.test_request_context(), force_locale("en"):
        msgids = {member: str(table[member]) for member in vocabulary}
    done = translated(language)
    missing = [member for member, msgid in msgids.items() if (context, msgid) not in done]
    assert not missing, f"{vocabulary.__name__} members without a {language} label: {missing}"


def test_label_functions_read_stored_values_and_leave_unknown_ones_as_they_are(app):
    with app.test_request_context(), force_locale("id"):
        assert labels.status_label("draft") == str(labels.STATUS_LABELS[TransactionStatus.DRAFT]) != "draft"
        assert labels.role_label("auditor") == str(labels.ROLE_LABELS[Role.AUDITOR])
        assert labels.action_label("login_failed") == str(labels.ACTION_LABELS[AuditAction.LOGIN_FAILED])
        assert labels.action_label("renamed") == "renamed"  # an action of a later version, say
        assert labels.status_label(None) == labels.role_label(None) == labels.language_name(None) == ""
        assert labels.language_name("en") == "English"


def test_every_language_has_its_name_and_every_other_one_its_catalogue():
    assert list(labels.LANGUAGES) == list(Language)
    assert Language.ENGLISH == list(Language)[0]  # the source language and the fallback
    assert sorted(TRANSLATED_LANGUAGES) == sorted(language for language in Language if language != Language.ENGLISH)
    for language in TRANSLATED_LANGUAGES:
        assert (TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo").is_file()


# --- no value spelled out again ---

VALUES = {str(member) for vocabulary in (*LABELLED, Language) for member in vocabulary}
STORED_AS = {"status", "role", "action", "locale"}  # the columns that hold the vocabularies
RECORDING = {"record", "entry"}  # audit.record(session, action, ...), audit.entry(actor, action, ...)


def _literal(node) -> bool:
    return isinstance(node, ast.Constant) and node.value in VALUES


def _literals(node) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_literal(element) for element in node.elts)
    return _literal(node)


def _spelled_out(tree) -> list[int]:
    """The lines with the common spellings of a value: a vocabulary (or part of one) written
    out as a tuple, list, set or dict keys; a vocabulary's column compared with a literal value
    or set to one; an audit action recorded by its value."""
    lines = []
    # The views' action names ("post", "delete") are Flask-Admin's vocabulary, not the audit's.
    view_actions = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(getattr(target, "id", None) == "action_rights" for target in node.targets)
    }
    for node in ast.walk(tree):
        elements = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if (
            elements
            and len(elements) > 1
            and all(_literal(element) for element in elements)
            and id(node) not in view_actions
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Attribute) and o.attr in STORED_AS for o in operands) and any(
                _literals(o) for o in operands
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            if any(k.arg in STORED_AS and _literal(k.value) for k in node.keywords) or (
                name in RECORDING and len(node.args) > 1 and _literal(node.args[1])
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Attribute) and t.attr in STORED_AS for t in node.targets) and _literal(node.value):
                lines.append(node.lineno)
    return lines


def test_the_code_names_the_members_not_their_values():
    found = []
    for path in sorted((ROOT / "adminapp").rglob("*.py")):
        if path.name == "vocabularies.py":
            continue
        found += [f"{path.relative_to(ROOT)}:{line}" for line in _spelled_out(ast.parse(path.read_text()))]
    assert not found, "values of a vocabulary spelled out (use its member): " + ", ".join(found)


def test_templates_name_the_members_not_their_values():
    compared = re.compile(r"\.(status|role|action|locale)\s*[!=]=\s*['\"]|_(status|role|action)_equals\s*=\s*['\"]")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert not found, "values of a vocabulary spelled out in templates: " + ", ".join(found)


def test_the_check_finds_a_value_spelled_out():
    code = ast.parse(
        'if txn.status == "draft": audit.record(session, "login", user, role="staff")\n'
        'txn.status = "void"\nx = user.role in ("admin", "staff")\n'
        'FINAL = ["posted", "void"]\nCOLOURS = {"draft": 1, "posted": 2}\n'
        'KINDS = ("insert", "delete")\naction_rights = {"post": CHANGE, "delete": DELETE}\n'
    )
    assert sorted(_spelled_out(code)) == [1, 1, 2, 3, 3, 4, 5]
