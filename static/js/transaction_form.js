/* Transaction editor: a table of lines (templates/admin/transaction/line_table.html).
 * Each line shows its product's stock and price, its subtotal and a mark when it asks for
 * more than the stock; the running total sits under the lines. Keyboard: pick a product,
 * Tab to the quantity, Enter adds the next line and puts the focus in its product.
 * Prices and stock come from the server; amounts are kept in integer cents (BigInt), never
 * floats, and printed exactly as the server prints money (the pattern it hands over).
 * The server checks and recomputes everything on save: this is a comfort, not a rule. */
(function () {
  "use strict";
  var totals = document.getElementById("transaction-totals");
  var form = document.querySelector("form.admin-form");
  if (!totals || !form || !window.jQuery) { return; }
  var $ = window.jQuery;
  var texts = totals.dataset;
  var productsUrl = texts.productsUrl;
  var pattern = JSON.parse(texts.money || "{}");
  var facts = {};  // product id -> {cents: BigInt, stock: Number, stockText: String}, or null while loading
  var groupSymbol = texts.groupSymbol || ",";
  var MAX_QTY_DIGITS = 7;  // the server refuses more than 1,000,000

  // The autocomplete speaks the page's language: select2 3.5 reads its texts from its
  // defaults when a field is set up (after this script has run, on the page's ready event).
  if ($.fn.select2 && $.fn.select2.defaults) {
    $.extend($.fn.select2.defaults, {
      formatSearching: function () { return texts.searching; },
      formatLoadMore: function () { return texts.loadMore; },
      formatNoMatches: function () { return texts.noMatches; },
      formatInputTooShort: function () { return texts.inputTooShort; },
      formatAjaxError: function () { return texts.ajaxError; },
      // Once chosen, a product reads "SKU — name": its price and stock have their own columns.
      formatSelection: function (data, container, escapeMarkup) {
        if (!data) { return undefined; }
        var text = String(data.text);
        // The last separator: a product's own name may contain the same sign.
        var cut = texts.choiceDetails ? text.lastIndexOf(texts.choiceDetails) : -1;
        return escapeMarkup(cut > 0 ? text.slice(0, cut) : text);
      },
      formatMatches: function (count) {
        return count === 1 ? texts.oneMatch : texts.matches.replace("{count}", String(count));
      }
    });
  }

  // A quantity as the server reads it, or null: plain digits (what other tools post), or
  // digits grouped in threes by the user's language (1.000 in Indonesian, 1,000 in English).
  // Anything else (1,5) the server refuses, so it has no subtotal here either.
  function quantity(text) {
    var value = String(text).trim();
    if (!/^[0-9]+$/.test(value)) {
      var groups = value.split(groupSymbol);
      var grouped = groups.length > 1 && /^[1-9][0-9]{0,2}$/.test(groups[0]) &&
        groups.slice(1).every(function (group) { return /^[0-9]{3}$/.test(group); });
      if (!grouped) { return null; }
      value = groups.join("");
    }
    return value.length <= MAX_QTY_DIGITS ? BigInt(value) : null;
  }

  function toCents(text) {
    var parts = String(text).split(".");
    var fraction = ((parts[1] || "") + "00").slice(0, 2);
    return BigInt(parts[0]) * 100n + BigInt(fraction);
  }

  function grouped(digits) {
    // Babel's grouping: the last `primary` digits, then groups of `secondary`.
    var primary = pattern.primary || 3, secondary = pattern.secondary || primary;
    if (!pattern.group || digits.length <= primary) { return digits; }
    var parts = [digits.slice(-primary)];
    var rest = digits.slice(0, -primary);
    while (rest.length > secondary) {
      parts.unshift(rest.slice(-secondary));
      rest = rest.slice(0, -secondary);
    }
    parts.unshift(rest);
    return parts.join(pattern.group);
  }

  // Cents as the server's money() prints them in the user's language ("IDR1,234.50",
  // "Rp1.234,50"): the currency's own number of decimals, rounded half to even as Babel does.
  function format(cents) {
    var digits = pattern.digits === undefined ? 2 : pattern.digits;
    var negative = cents < 0n;
    var amount = negative ? -cents : cents;
    if (digits < 2) {
      var divisor = 10n ** BigInt(2 - digits), half = divisor / 2n;
      var rest = amount % divisor;
      amount = amount / divisor;
      if (rest > half || (rest === half && amount % 2n === 1n)) { amount += 1n; }
    } else {
      amount = amount * 10n ** BigInt(digits - 2);
    }
    var scale = 10n ** BigInt(digits);
    var text = grouped((amount / scale).toString());
    if (digits) { text += pattern.decimal + (amount % scale).toString().padStart(digits, "0"); }
    return negative ? pattern.negative_prefix + text + pattern.negative_suffix
                    : pattern.prefix + text + pattern.suffix;
  }

  function allRows() {
    // Flask-Admin also gives the table (id "lines") the class "inline-field": match the
    // rows inside the list, not the table.
    return Array.prototype.slice.call(form.querySelectorAll(".inline-field-list > .inline-field"));
  }

  function removed(row) {
    var del = row.querySelector("input[type=checkbox][name^='del-']");
    return Boolean(del && del.checked);
  }

  function lineRows() {
    return allRows().filter(function (row) { return !removed(row); });
  }

  function rowParts(row) {
    return {
      product: row.querySelector("input[name$='-product']"),
      qty: row.querySelector("input[name$='-product_qty']"),
      stock: row.querySelector(".line-stock"),
      price: row.querySelector(".line-price"),
      subtotal: row.querySelector(".line-subtotal"),
      note: row.querySelector(".line-stock-note")
    };
  }

  function show(element, text) {
    // Only touch the DOM on a change: the MutationObserver below would loop otherwise.
    if (element && element.textContent !== text) { element.textContent = text; }
  }

  function fetchFacts(ids) {
    var missing = ids.filter(function (id) { return !(id in facts); });
    if (!missing.length) { return; }
    missing.forEach(function (id) { facts[id] = null; });
    var query = missing.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
    fetch(productsUrl + "?" + query, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (found) {
        Object.keys(found).forEach(function (id) {
          facts[id] = { cents: toCents(found[id].price), stock: found[id].stock, stockText: found[id].stock_text };
        });
        recalculate();
      });
  }

  // The shortage mark: a class on the row (drawn in red), the quantity box invalid, and the
  // reason ("Only 3 in stock") below it, tied to the box for screen readers.
  function mark(row, parts, message) {
    var note = parts.note;
    if (!note || !parts.qty) { return; }
    if (!note.id) { note.id = row.id + "-note"; }
    row.classList.toggle("line-short", Boolean(message));
    parts.qty.classList.toggle("is-invalid", Boolean(message) || parts.qty.dataset.serverInvalid === "1");
    if (message) {
      parts.qty.setAttribute("aria-invalid", "true");
      parts.qty.setAttribute("aria-describedby", note.id);
      show(note, message);
      if (note.hidden) { note.hidden = false; }
    } else {
      if (parts.qty.getAttribute("aria-describedby") === note.id) { parts.qty.removeAttribute("aria-describedby"); }
      if (parts.qty.dataset.serverInvalid !== "1") { parts.qty.removeAttribute("aria-invalid"); }
      if (!note.hidden) { note.hidden = true; }
    }
  }

  function shortage(fact, qty) {
    if (!fact || qty === null || BigInt(fact.stock) >= qty) { return null; }
    return fact.stock <= 0 ? texts.outOfStock : texts.onlyInStock.replace("{stock}", fact.stockText);
  }

  function recalculate() {
    var total = 0n;
    var complete = true;
    var wanted = [];
    allRows().forEach(function (row) {
      var parts = rowParts(row);
      if (!parts.product || !parts.qty) { return; }
      var gone = removed(row);
      row.classList.toggle("line-removed", gone);
      var id = parts.product.value;
      var qty = quantity(parts.qty.value);
      if (!id) {
        show(parts.stock, ""); show(parts.price, ""); show(parts.subtotal, "");
        if (!row.dataset.serverMark) { mark(row, parts, null); }
        return;
      }
      if (!(id in facts)) { wanted.push(id); }
      var fact = facts[id];
      if (fact) {
        show(parts.stock, fact.stockText);
        show(parts.price, format(fact.cents));
      }
      // A mark the server made (a refused post) stays until the line is changed.
      if (!row.dataset.serverMark) { mark(row, parts, gone ? null : shortage(fact, qty)); }
      if (gone) { return; }
      if (qty === null) { show(parts.subtotal, ""); return; }
      if (!fact) { complete = false; show(parts.subtotal, "…"); return; }
      var subtotal = fact.cents * qty;
      show(parts.subtotal, format(subtotal));
      total += subtotal;
    });
    show(document.getElementById("running-total"), complete ? format(total) : "…");
    if (wanted.length) { fetchFacts(wanted); }
  }

  // --- rows added on the page ---
  var addButton = document.getElementById("lines-button");

  function focusProduct(row) {
    var field = row && (row.querySelector(".select2-focusser") || row.querySelector("input:not([type=hidden])"));
    if (field) { field.focus(); }
  }

  function addLine() {
    addButton.click();  // Flask-Admin's own handler (onclick) adds the row
  }

  // A new row's labels name its own fields before select2 builds its control (and copies
  // the label's text): Flask-Admin renames the fields but not the labels.
  if (window.faForm) {
    var applyGlobalStyles = window.faForm.applyGlobalStyles;
    window.faForm.applyGlobalStyles = function (parent) {
      $(parent).filter("tr.inline-field").each(function () {
        var row = this;
        row.querySelectorAll("label[for]").forEach(function (label) {
          var own = row.querySelector("[id$='-" + label.htmlFor + "']");
          if (own) { label.htmlFor = own.id; }
        });
        var note = row.querySelector(".line-stock-note");
        if (note && !note.id) { note.id = row.id + "-note"; }
      });
      return applyGlobalStyles.apply(this, arguments);
    };
  }

  // Keyboard users land in the new line's product field, not back on the "Add line" button.
  $(form).on("click", "#lines-button", function () {
    window.setTimeout(function () {
      var rows = allRows();
      focusProduct(rows[rows.length - 1]);
    }, 0);
  });

  // Enter in a quantity never submits the form: it goes on to the next line's product,
  // adding that line when this is the last one.
  $(form).on("keydown", ".line-qty-input", function (event) {
    if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) { return; }
    event.preventDefault();
    var rows = lineRows();
    var next = rows[rows.indexOf(this.closest("tr")) + 1];
    if (next) { focusProduct(next); } else { addLine(); }
  });

  // Changing a line drops the mark a refused post left on it: from then on it is the
  // drafting mark (the stock against the quantity typed) that counts.
  $(form).on("change input", "tr.inline-field input", function () {
    var row = this.closest("tr.inline-field");
    if (row && row.dataset.serverMark) { delete row.dataset.serverMark; }
  });

  // A line added but never filled in (no product, the quantity as it came) is not sent:
  // Django's admin ignores such an empty extra form too.
  form.addEventListener("submit", function () {
    allRows().forEach(function (row) {
      var parts = rowParts(row);
      var saved = row.querySelector("input[name$='-id']");
      if (parts.product && !parts.product.value && !(saved && saved.value) &&
          (!parts.qty || parts.qty.value.trim() === "" || parts.qty.value.trim() === "1")) {
        row.querySelectorAll("input, select, textarea").forEach(function (field) { field.disabled = true; });
      }
    });
  });

  // Post posts what is saved: say so when the page holds changes that are not.
  var changed = false;
  $(form).on("change input", function () { changed = true; });
  var postForm = document.getElementById("post-form");
  if (postForm) {
    postForm.addEventListener("submit", function (event) {
      if (changed && !window.confirm(texts.unsaved)) { event.preventDefault(); }
    });
  }

  // select2 reports its changes through jQuery, so listen through jQuery too.
  $(form).on("change input", "input", recalculate);
  new MutationObserver(recalculate).observe(form, { childList: true, subtree: true });

  // After Flask-Admin has set up the fields (its own ready handler ran first).
  $(function () {
    if (texts.new === "true" && allRows().length === 0) {
      window.faForm.addInlineField(addButton, "lines");
    }
    recalculate();
  });
})();
