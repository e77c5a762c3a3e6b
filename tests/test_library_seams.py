"""The private parts of Flask-Admin, Flask, Flask-Login and Flask-Babel that adminapp still
overrides or reads, each checked against the installed library: an upgrade that renames or
reshapes one fails here, by name, instead of quietly turning our override into dead code.

Adding a seam is one line in SIGNATURES or ATTRIBUTES; a private helper of our own that
overrides nothing is one word in OUR_PRIVATE_HELPERS.
"""

import importlib
import inspect
import pkgutil
from pathlib import Path

import flask_admin
import pytest
import wtforms
from flask import flash, g, session
from flask_admin.base import BaseView
from flask_admin.contrib.sqla import validators as sqla_validators
from flask_admin.model.base import BaseModelView, ViewArgs
from flask_babel import lazy_gettext
from flask_login import current_user

import adminapp

from .support import make_app

ROOT = Path(__file__).resolve().parent.parent

# (where, name, parameter names): a private method adminapp overrides or calls.
SIGNATURES = [
    (BaseView, "_handle_view", ["self", "name", "kwargs"]),  # SecuredModelView: rights per endpoint
    (BaseView, "_run_view", ["self", "fn", "args", "kwargs"]),  # SecuredModelView: a save's message names the record
    (BaseModelView, "_get_list_extra_args", ["self"]),  # SecuredModelView: the page kept within the cap
    (BaseModelView, "_get_column_by_idx", ["self", "idx"]),  # list_arg_problems, list_query: the sort column
    (ViewArgs, "clone", ["self", "kwargs"]),  # _get_list_extra_args returns a changed copy
    (BaseModelView, "_get_list_url", ["self", "view_args"]),  # quick_filters: each choice's link
    # create_model / update_model (Flask-Admin's steps without its commit) call its hook wrapper
    (BaseModelView, "_on_model_change", ["self", "form", "model", "is_created"]),
    (wtforms.IntegerField, "_value", ["self"]),  # admin.fields: number fields show their value in the language
    (wtforms.DecimalField, "_value", ["self"]),
]

# (view endpoint, attribute, type): a private attribute of a Flask-Admin view that adminapp reads.
ATTRIBUTES = [
    ("product", "_sortable_columns", dict),  # list_arg_problems: is the sort column sortable
    ("transaction", "_form_ajax_refs", dict),  # ajax_lookup: the line editor's product loader
    ("product", "_filter_args", dict),  # quick_filters: a filter's index from its URL argument
    ("product", "_filters", list),  # quick_filters: the filter at that index
]

# Private methods of adminapp's own classes that override nothing, on purpose.
OUR_PRIVATE_HELPERS = {
    "_export_formatters",
    "_reload_products_after_refusal",
    "_refuse_too_many_lines",
    "_key_with_username",
    "_values",
    "_play",
    "_write",
}


@pytest.mark.parametrize("owner, name, parameters", SIGNATURES, ids=lambda v: getattr(v, "__name__", None))
def test_private_method_we_rely_on_is_still_there(owner, name, parameters):
    where = f"{owner.__module__}.{owner.__qualname__}.{name}"
    assert hasattr(owner, name), f"{where} is gone: adminapp overrides or calls it"
    found = list(inspect.signature(getattr(owner, name)).parameters)
    assert found == parameters, f"{where} now takes {found}, adminapp expects {parameters}"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("seams")
    return make_app(f"sqlite:///{tmp_path / 'seams.db'}", tmp_path)


def admin_view(app, endpoint):
    return next(view for view in app.extensions["admin"][0]._views if view.endpoint == endpoint)


@pytest.mark.parametrize("endpoint, name, kind", ATTRIBUTES)
def test_private_attribute_we_read_is_still_there(app, endpoint, name, kind):
    view = admin_view(app, endpoint)
    where = f"Flask-Admin's {name} (on {type(view).__name__})"
    assert hasattr(view, name), f"{where} is gone: adminapp reads it"
    assert isinstance(getattr(view, name), kind), f"{where} is no longer a {kind.__name__}"


def test_ajax_loaders_still_get_list_and_format(app):
    loaders = admin_view(app, "transaction")._form_ajax_refs.values()
    assert loaders, "Flask-Admin no longer keeps the view's ajax loaders in _form_ajax_refs"
    for loader in loaders:
        assert callable(loader.get_list) and callable(loader.format), "Flask-Admin's ajax loader API changed"


def test_lazy_strings_still_keep_their_english_source_in_args():
    """admin.base.untranslated reads it (as Flask-Admin's own get_filter_arg does)."""
    text = lazy_gettext("Price")
    assert getattr(text, "_args", None) == ("Price",), "flask_babel's LazyString no longer keeps its args in _args"


def test_flask_still_keeps_flashed_messages_under_flashes(app):
    """auth.views.require_password_change reads session["_flashes"] to flash a message once."""
    with app.test_request_context("/"):
        flash("Choose a new password", "warning")
        assert session.get("_flashes") == [("warning", "Choose a new password")], (
            'Flask no longer stores flashed messages in session["_flashes"]'
        )


def test_flask_login_still_takes_the_user_from_g_login_user(app):
    """The error pages set g._login_user to an anonymous user when no user can be loaded."""
    with app.test_request_context("/"):
        anonymous = app.login_manager.anonymous_user()
        g._login_user = anonymous
        assert current_user._get_current_object() is anonymous, "Flask-Login no longer keeps the user in g._login_user"


def test_the_preloaded_icon_font_is_the_one_flask_admins_stylesheet_asks_for():
    """The master template preloads Font Awesome's font by its address; a Flask-Admin that
    ships another font or version would leave the preload unused and fetch the font twice
    (tests/browser/test_icons.py watches the fetches)."""
    package = Path(flask_admin.__file__).parent
    base = (package / "templates/bootstrap4/admin/base.html").read_text()
    assert "filename='bootstrap/bootstrap4/css/font-awesome.min.css', v='4.7.0'" in base
    stylesheet = (package / "static/bootstrap/bootstrap4/css/font-awesome.min.css").read_text()
    assert "url('../fonts/fontawesome-webfont.woff2?v=4.7.0')" in stylesheet
    assert (package / "static/bootstrap/bootstrap4/fonts/fontawesome-webfont.woff2").exists()
    master = (ROOT / "templates/admin/adminapp_master.html").read_text()
    assert "filename='bootstrap/bootstrap4/fonts/fontawesome-webfont.woff2', v='4.7.0'" in master


def test_flask_admin_unique_validator_still_reads_the_form_obj():
    """admin.base.AdminForm keeps the edited record as ``_obj`` for it."""
    assert "form._obj" in inspect.getsource(sqla_validators.Unique), (
        "Flask-Admin's Unique validator no longer reads form._obj: AdminForm keeps it for nothing"
    )


def adminapp_classes():
    for module in pkgutil.walk_packages(adminapp.__path__, "adminapp."):
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if cls.__module__ == module.name:
                yield cls


def overrides_something(cls, name: str, classes: list) -> bool:
    """Whether ``name`` on ``cls`` overrides a method after it in the MRO of a class that uses
    it (a mixin such as a field's overrides the field class it is mixed into)."""
    users = [user for user in classes if cls in user.__mro__]
    return any(hasattr(base, name) for user in users for base in user.__mro__[user.__mro__.index(cls) + 1 :])


def test_our_private_methods_override_a_library_method():
    """A private method on one of our classes overrides the library's (an upstream rename
    would leave ours uncalled), unless it is one of our own helpers."""
    classes = list(adminapp_classes())
    orphans = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in classes
        for name, value in vars(cls).items()
        if name.startswith("_")
        and not name.startswith("__")
        and callable(getattr(value, "__get__", None))
        and name not in OUR_PRIVATE_HELPERS
        and not overrides_something(cls, name, classes)
    ]
    assert not orphans, f"these override nothing in the installed libraries: {orphans}"


def test_the_line_editor_still_fits_flask_admins_inline_script():
    """The transaction lines are a table (templates/admin/transaction/line_table.html) whose
    rows Flask-Admin's form.js still adds, and whose new rows transaction_form.js labels
    before select2 3.5 (whose texts it translates through its defaults) sets them up."""
    from pathlib import Path

    import flask_admin
    from flask_admin.contrib.sqla.fields import InlineModelFormList
    from flask_admin.contrib.sqla.form import InlineModelConverter

    static = Path(flask_admin.__file__).parent / "static"
    form_js = (static / "admin" / "js" / "form.js").read_text()
    for relied_on in (
        "$el.find('> .inline-field-list')",
        "$fieldList.children('.inline-field')",
        "$($el.find('> .inline-field-template').text())",
        "this.applyGlobalStyles($template)",
    ):
        assert relied_on in form_js, f"form.js no longer has {relied_on}: check the line editor"
    select2 = (static / "vendor" / "select2" / "select2.min.js").read_text()
    assert "Version: 3.5." in select2, "select2 is no longer 3.5: its texts are set otherwise"
    assert issubclass(InlineModelConverter.inline_field_list_type, InlineModelFormList)
