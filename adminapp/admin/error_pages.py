"""The admin's frame around error pages."""

from flask import abort
from flask_admin import BaseView, expose


class ErrorPageFrame(BaseView):
    """Draws error pages in the admin's frame (menu, user, language) with no menu item marked
    as the current page. It is never added to the admin, so it has no URL of its own."""

    def __init__(self, admin):
        super().__init__(name="")
        self.admin = admin

    @expose("/")
    def index(self):  # Flask-Admin requires a default view
        abort(404)
