/* Fills gaps in Flask-Admin's markup that assistive technology needs: the page language,
 * names for icon-only controls (the search's clear link) and title-only checkboxes, and
 * labels of inline rows added on the page (their <label for> keeps the template's
 * unprefixed id). */
(function () {
  "use strict";
  var texts = document.querySelector("meta[name='adminapp-a11y']");
  var removeLine = texts ? texts.dataset.removeLine : "Remove";
  var clearSearch = texts ? texts.dataset.clearSearch : "Clear";

  function name(element, text) {
    if (text && !element.getAttribute("aria-label")) { element.setAttribute("aria-label", text); }
  }

  function fix(root) {
    root.querySelectorAll("input[type=checkbox][title]").forEach(function (box) { name(box, box.title); });
    // The list's search box, once searched, has an icon-only link that clears the search.
    root.querySelectorAll("form[role=search] a[href]").forEach(function (link) {
      if (!link.textContent.trim()) { name(link, clearSearch); }
    });
    root.querySelectorAll(".inline-remove-field").forEach(function (link) {
      name(link, removeLine);
      link.setAttribute("role", "button");
    });
    // The Add Filter rows: a value box is named by its filter and operation ("Created from").
    root.querySelectorAll("#filter_form .filter-val").forEach(function (box) {
      var row = box.closest("tr");
      var filter = row && row.querySelector(".remove-filter");
      var operation = row && row.querySelector("select.filter-op");
      var chosen = operation && operation.options[operation.selectedIndex];
      if (filter) { name(box, (filter.textContent.replace(/^[\s\u00d7]+/, "") + " " + (chosen ? chosen.text : "")).trim()); }
    });
    // A message's dismiss cross is hidden from screen readers (aria-hidden) by Flask-Admin,
    // yet focusable: keep it out of the Tab order too, as the message stays readable anyway.
    root.querySelectorAll(".alert .close[aria-hidden='true']").forEach(function (button) {
      button.setAttribute("tabindex", "-1");
    });
    root.querySelectorAll(".inline-field-list .inline-field label[for]").forEach(function (label) {
      var row = label.closest(".inline-field");
      var target = document.getElementById(label.htmlFor);
      if (!target || !row.contains(target)) {
        var own = row.querySelector("[id$='-" + label.htmlFor + "']");
        if (own) { label.htmlFor = own.id; }
      }
    });
  }

  if (texts && texts.dataset.lang) { document.documentElement.lang = texts.dataset.lang; }
  fix(document);
  new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      change.addedNodes.forEach(function (node) { if (node.querySelectorAll) { fix(node); } });
    });
  }).observe(document.body, { childList: true, subtree: true });
})();
