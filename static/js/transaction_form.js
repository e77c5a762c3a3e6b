/* Transaction editor: each line's subtotal and the running total, as the user types.
 * Prices come from the server; amounts are kept in integer cents (BigInt), never floats.
 * The server recomputes everything on save: this is a comfort, not a rule. */
(function () {
  "use strict";
  var totals = document.getElementById("transaction-totals");
  var form = document.querySelector("form.admin-form");
  if (!totals || !form || !window.jQuery) { return; }
  var $ = window.jQuery;
  var pricesUrl = totals.dataset.pricesUrl;
  // Always two decimals, as the server stores and prints amounts: left to its defaults,
  // Intl rounds some currencies to whole units (IDR 19.99 would show as "IDR 20").
  var money = new Intl.NumberFormat(totals.dataset.locale || "en", {
    style: "currency", currency: totals.dataset.currency || "IDR",
    minimumFractionDigits: 2, maximumFractionDigits: 2
  });
  var priceCents = {};  // product id -> BigInt cents, or null while loading
  var groupSymbol = totals.dataset.groupSymbol || ",";
  var MAX_QTY_DIGITS = 7;  // the server refuses more than 1,000,000

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

  function format(cents) {
    var negative = cents < 0n;
    var abs = negative ? -cents : cents;
    var text = (abs / 100n).toString() + "." + (abs % 100n).toString().padStart(2, "0");
    return money.format((negative ? "-" : "") + text);
  }

  function lineRows() {
    // Live rows only: not the hidden template, not rows marked for deletion. Flask-Admin
    // also gives the rows' container (div#lines) the class "inline-field": match the rows
    // inside the list, or the container would count the first line a second time.
    return Array.prototype.filter.call(
      form.querySelectorAll(".inline-field-list > .inline-field"),
      function (row) {
        if (row.closest(".inline-field-template")) { return false; }
        var del = row.querySelector("input[type=checkbox][name^='del-']");
        return !(del && del.checked);
      });
  }

  function rowParts(row) {
    return {
      product: row.querySelector("input[name$='-product']"),
      qty: row.querySelector("input[name$='-product_qty']")
    };
  }

  function subtotalCell(row) {
    var cell = row.querySelector(".line-subtotal");
    if (!cell) {
      cell = document.createElement("div");
      cell.className = "line-subtotal text-right font-weight-bold";
      cell.setAttribute("aria-live", "polite");
      row.appendChild(cell);
    }
    return cell;
  }

  function show(element, text) {
    // Only touch the DOM on a change: the MutationObserver below would loop otherwise.
    if (element.textContent !== text) { element.textContent = text; }
  }

  function fetchPrices(ids) {
    var missing = ids.filter(function (id) { return !(id in priceCents); });
    if (!missing.length) { return; }
    missing.forEach(function (id) { priceCents[id] = null; });
    var query = missing.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
    fetch(pricesUrl + "?" + query, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (prices) {
        Object.keys(prices).forEach(function (id) { priceCents[id] = toCents(prices[id]); });
        recalculate();
      });
  }

  function recalculate() {
    var total = 0n;
    var complete = true;
    var wanted = [];
    lineRows().forEach(function (row) {
      var parts = rowParts(row);
      if (!parts.product || !parts.qty) { return; }
      var id = parts.product.value;
      var qty = quantity(parts.qty.value);
      var cell = subtotalCell(row);
      if (!id || qty === null) { show(cell, ""); return; }
      if (!(id in priceCents)) { wanted.push(id); }
      var price = priceCents[id];
      if (price === undefined || price === null) { complete = false; show(cell, "…"); return; }
      var subtotal = price * qty;
      show(cell, format(subtotal));
      total += subtotal;
    });
    show(document.getElementById("running-total"), complete ? format(total) : "…");
    if (wanted.length) { fetchPrices(wanted); }
  }

  // Keyboard users land in the new line's product field, not back on the "Add" button.
  $(form).on("click", "#lines-button", function () {
    window.setTimeout(function () {
      var rows = form.querySelectorAll(".inline-field-list > .inline-field");
      var row = rows[rows.length - 1];
      var field = row && (row.querySelector(".select2-focusser") ||
                          row.querySelector("input:not([type=hidden]), select"));
      if (field) { field.focus(); }
    }, 0);
  });

  // select2 reports its changes through jQuery, so listen through jQuery too.
  $(form).on("change input", "input", recalculate);
  new MutationObserver(recalculate).observe(form, { childList: true, subtree: true });
  recalculate();
})();
