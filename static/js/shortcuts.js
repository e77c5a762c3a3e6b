/* Keyboard shortcuts: "/" goes to the list's search box, "n" opens the Create page (only
 * where the page offers a Create link: the server decides who may create), Ctrl+Enter or
 * Cmd+Enter saves the form as its Save button would, "?" opens the list of shortcuts
 * (#shortcuts-dialog, rendered by the server in the user's language).
 * Letters and signs never act while the user types in a field; Ctrl+Enter is meant for
 * use inside the form. A key held with Ctrl, Alt or Cmd stays the browser's. */
(function () {
  "use strict";
  var dialog = document.getElementById("shortcuts-dialog");
  var returnFocusTo = null;

  var NOT_TYPED = ["checkbox", "radio", "button", "submit", "reset", "image", "range", "color", "file"];

  function isTyping(element) {
    if (!element || element === document.body) { return false; }
    if (element.isContentEditable) { return true; }
    if (element.closest(".select2-container, .select2-drop")) { return true; }
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") { return true; }
    return tag === "INPUT" && NOT_TYPED.indexOf((element.type || "text").toLowerCase()) === -1;
  }

  function visible(element) {
    return !!element && !element.disabled && element.getClientRects().length > 0;
  }

  function anyDialogOpen() {
    return document.querySelector(".modal.show") !== null;
  }

  function searchBox() {
    var boxes = document.querySelectorAll("form[role=search] input[name=search], #fa_filter");
    return Array.prototype.filter.call(boxes, visible)[0] || null;
  }

  function createLink() {
    var links = document.querySelectorAll(".nav-tabs a.nav-link[href]");
    return Array.prototype.filter.call(links, function (link) {
      return link.protocol.indexOf("http") === 0 && /\/new\/$/.test(link.pathname) &&
        !link.classList.contains("active") && !link.classList.contains("disabled");
    })[0] || null;
  }

  /* The record form to save: the one holding the focus, else the page's only one. */
  function recordForm(target) {
    var holder = target && target.closest ? target.closest("form") : null;
    if (holder) { return holder.classList.contains("admin-form") ? holder : null; }
    var forms = document.querySelectorAll("form.admin-form");
    return forms.length === 1 ? forms[0] : null;
  }

  /* Its primary Save button (Flask-Admin's unnamed "Save"), found among the form's own
   * controls, so a button placed outside the form with form="..." counts too. */
  function saveButton(form) {
    var submits = Array.prototype.filter.call(form.elements, function (control) {
      return control.type === "submit" && !control.disabled;
    });
    return submits.filter(function (b) { return b.classList.contains("btn-primary") && !b.name; })[0] ||
      submits.filter(function (b) { return b.classList.contains("btn-primary"); })[0] || null;
  }

  function openDialog() {
    if (!dialog || !window.jQuery) { return; }
    returnFocusTo = document.activeElement;
    window.jQuery(dialog).modal("show");
  }

  if (dialog && window.jQuery) {
    window.jQuery(dialog).on("hidden.bs.modal", function () {
      // Opened from the keyboard: focus goes back where it was (Bootstrap does this itself
      // only for the button that opened it).
      if (returnFocusTo && document.contains(returnFocusTo) && returnFocusTo !== document.body) {
        returnFocusTo.focus();
      }
      returnFocusTo = null;
    });
    document.getElementById("shortcuts-hint").addEventListener("click", function () {
      returnFocusTo = null;
    });
  }

  /* Screen readers announce a control's shortcut (aria-keyshortcuts). */
  function announce(element, keys) {
    if (element) { element.setAttribute("aria-keyshortcuts", keys); }
  }
  announce(searchBox(), "/");
  announce(createLink(), "N");
  var onlyForm = recordForm(null);
  announce(onlyForm && saveButton(onlyForm), "Control+Enter Meta+Enter");
  announce(document.getElementById("shortcuts-hint"), "Shift+?");

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing || event.repeat) { return; }
    var target = event.target;

    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey) {
      if (anyDialogOpen()) { return; }
      var form = recordForm(target);
      var button = form && saveButton(form);
      if (button) {
        event.preventDefault();
        button.click();
      }
      return;
    }

    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(target)) { return; }
    if (anyDialogOpen()) { return; }

    if (event.key === "/") {
      var box = searchBox();
      if (box) {
        event.preventDefault();  // or the "/" would be typed into the box
        box.focus();
        box.select();
      }
    } else if (event.key === "n") {
      var link = createLink();
      if (link) {
        event.preventDefault();
        link.click();
      }
    } else if (event.key === "?") {
      if (dialog) {
        event.preventDefault();
        openDialog();
      }
    }
  });
})();
